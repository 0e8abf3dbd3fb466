/**
 * Templates encrypted at rest (issue 15, item 2): envelope encryption with AES-256-GCM (node:crypto).
 *
 * - The key-encryption key (KEK) is a file named by FACEFLOW_GALLERY_KEY_FILE: one line, 32 random bytes as
 *   base64 (44 characters) or hex (64), nothing else but an optional trailing newline (`faceflow gallery
 *   new-key FILE` writes one, mode 0600). Its id is the first 16 hex digits of SHA-256 over the key: it names
 *   the key in every sealed gallery without revealing it, so a wrong key is told apart from a tampered one.
 * - Each gallery has its own random data key (DK) and gallery id; the gallery stores the DK only wrapped
 *   (sealed) under the KEK, in its keyring (GalleryKeyring: the file's "encryption" header, Redis'
 *   <prefix>keyring). Rotating the KEK re-wraps the DK (one small write); rotating the DK re-seals every record.
 * - A record (one identity's embeddings, metadata and last change) is sealed under the DK as
 *   "ff1.<dk id>.<base64 of iv(12) | ciphertext | tag(16)>", with the additional data
 *   "faceflow-gallery-record/1 | gallery id | identity id | dk id": a record copied under another name or
 *   into another gallery fails to open, as does any flipped bit. Identity ids (names) are NOT sealed: they are
 *   the stores' index keys (the Redis hash field, the file's lookup), see docs/security.md.
 *
 * Failures: GALLERY_KEY (no key, or another key than the gallery's: set FACEFLOW_GALLERY_KEY_FILE) and
 * GALLERY_INTEGRITY (a record or keyring that does not authenticate: tampered or corrupted); neither is
 * retriable, and neither message ever holds a key or an embedding.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { inspect } from 'node:util';
import { optional } from '../config.js';
import { FaceflowError } from '../errors.js';
import type { GalleryIdentity } from './types.js';

export const GALLERY_KEY_ENV = 'FACEFLOW_GALLERY_KEY_FILE';
export const GALLERY_CIPHER = 'AES-256-GCM';
const RECORD_PREFIX = 'ff1.';
const IV_BYTES = 12;
const TAG_BYTES = 16;

function keyIdOf(bytes: Buffer): string {
  return createHash('sha256').update('faceflow-gallery-kek/1').update(bytes).digest('hex').slice(0, 16);
}

function keyError(message: string, details: Record<string, unknown> = {}): FaceflowError {
  return new FaceflowError('GALLERY_KEY', message, { details });
}

function integrityError(message: string, details: Record<string, unknown> = {}): FaceflowError {
  return new FaceflowError('GALLERY_INTEGRITY', message, { details });
}

/** The key-encryption key. Its bytes are private: logging or JSON-encoding it shows the id only. */
export class GalleryKey {
  readonly #bytes: Buffer;
  /** 16 hex digits naming the key (not secret). */
  readonly id: string;

  private constructor(bytes: Buffer) {
    this.#bytes = bytes;
    this.id = keyIdOf(bytes);
  }

  /** Parses the key file's text (base64 or hex of 32 bytes, one line). */
  static parse(text: string, source = 'the gallery key'): GalleryKey {
    const line = text.replace(/\r?\n$/, '');
    let bytes: Buffer | undefined;
    if (/^[0-9a-fA-F]{64}$/.test(line)) bytes = Buffer.from(line, 'hex');
    else if (/^[A-Za-z0-9+/]{43}=$/.test(line)) bytes = Buffer.from(line, 'base64');
    if (bytes?.length !== 32) {
      throw new FaceflowError('INVALID_CONFIG', `${source} must hold one line: 32 random bytes as base64 (44 characters) or hex (64); \`faceflow gallery new-key FILE\` writes one`, {
        details: { source },
      });
    }
    return new GalleryKey(bytes);
  }

  /** Reads the key file (synchronously: config parsers are synchronous). */
  static fromFile(path: string): GalleryKey {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (e) {
      throw new FaceflowError('INVALID_CONFIG', `cannot read the gallery key file ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { cause: e, details: { path } });
    }
    return GalleryKey.parse(text, `the gallery key file ${path}`);
  }

  /** A new random key, and the one line its key file holds. */
  static generate(): { key: GalleryKey; text: string } {
    const bytes = randomBytes(32);
    return { key: new GalleryKey(Buffer.from(bytes)), text: `${bytes.toString('base64')}\n` };
  }

  /** @internal the raw bytes, for this module only */
  static bytesOf(k: GalleryKey): Buffer {
    return k.#bytes;
  }

  toJSON(): { keyId: string } {
    return { keyId: this.id };
  }

  [inspect.custom](): string {
    return `GalleryKey(${this.id})`;
  }
}

/** The key file named by FACEFLOW_GALLERY_KEY_FILE in `env`, or undefined when it is unset (or empty). */
export function galleryKeyFromEnv(env: Record<string, string | undefined> = process.env): GalleryKey | undefined {
  const path = env[GALLERY_KEY_ENV];
  return path ? GalleryKey.fromFile(path) : undefined;
}

/** The config field of every service that reads or writes a gallery (defineConfig; the file is read at start-up). */
export const galleryKeyConfigFields = {
  galleryKey: optional({
    env: GALLERY_KEY_ENV,
    parse: (raw: string) => GalleryKey.fromFile(raw),
    doc: 'file holding the gallery key-encryption key (one line: 32 random bytes, base64 or hex; `faceflow gallery new-key FILE`): templates are sealed at rest with it (docs/security.md); unset: plaintext, with a warning',
  }),
};

/** A gallery's keyring as stored (no secret in it: the data key is sealed under the KEK). */
export interface GalleryKeyring {
  alg: typeof GALLERY_CIPHER;
  /** random id of the gallery, bound into every record */
  gallery: string;
  /** id of the KEK the data key is wrapped under */
  kek: string;
  /** id of the data key (random) */
  dataKey: string;
  /** base64 of iv | wrapped data key | tag */
  wrapped: string;
}

function seal(key: Buffer, plain: Buffer, aad: string): string {
  const iv = randomBytes(IV_BYTES);
  const c = createCipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
  c.setAAD(Buffer.from(aad, 'utf8'));
  const body = Buffer.concat([c.update(plain), c.final()]);
  return Buffer.concat([iv, body, c.getAuthTag()]).toString('base64');
}

/** The plaintext, or undefined when it does not authenticate. */
function unseal(key: Buffer, sealed: string, aad: string): Buffer | undefined {
  const buf = Buffer.from(sealed, 'base64');
  if (buf.length < IV_BYTES + TAG_BYTES) return undefined;
  try {
    const d = createDecipheriv('aes-256-gcm', key, buf.subarray(0, IV_BYTES), { authTagLength: TAG_BYTES });
    d.setAAD(Buffer.from(aad, 'utf8'));
    d.setAuthTag(buf.subarray(buf.length - TAG_BYTES));
    return Buffer.concat([d.update(buf.subarray(IV_BYTES, buf.length - TAG_BYTES)), d.final()]);
  } catch {
    return undefined;
  }
}

const wrapAad = (gallery: string, dataKey: string, kek: string): string => `faceflow-gallery-data-key/1\u0000${gallery}\u0000${dataKey}\u0000${kek}`;
const recordAad = (gallery: string, id: string, dataKey: string): string => `faceflow-gallery-record/1\u0000${gallery}\u0000${id}\u0000${dataKey}`;

/** Whether a stored value is a sealed record (else a plaintext JSON one). */
export function isSealedRecord(raw: string): boolean {
  return raw.startsWith(RECORD_PREFIX);
}

/** The data key id a sealed record names. */
export function sealedRecordKeyId(raw: string): string | undefined {
  const m = /^ff1\.([0-9a-f]{16})\./.exec(raw);
  return m?.[1];
}

/** A gallery's unwrapped data key: seals and opens its records. */
export class GalleryCipher {
  readonly #dk: Buffer;

  private constructor(
    dk: Buffer,
    /** the keyring as stored, wrapped under `kek` */
    readonly keyring: GalleryKeyring,
  ) {
    this.#dk = dk;
  }

  get galleryId(): string {
    return this.keyring.gallery;
  }

  get dataKeyId(): string {
    return this.keyring.dataKey;
  }

  get kekId(): string {
    return this.keyring.kek;
  }

  private static wrap(dk: Buffer, gallery: string, dataKey: string, kek: GalleryKey): GalleryCipher {
    const wrapped = seal(GalleryKey.bytesOf(kek), dk, wrapAad(gallery, dataKey, kek.id));
    return new GalleryCipher(dk, { alg: GALLERY_CIPHER, gallery, kek: kek.id, dataKey, wrapped });
  }

  /** A new gallery: new gallery id and data key, wrapped under `kek`. */
  static create(kek: GalleryKey): GalleryCipher {
    return GalleryCipher.wrap(randomBytes(32), randomBytes(8).toString('hex'), randomBytes(8).toString('hex'), kek);
  }

  /**
   * Unwraps a stored keyring. `where` names the gallery in errors. No key: GALLERY_KEY (set the variable);
   * another key: GALLERY_KEY (naming both key ids); a keyring that does not authenticate: GALLERY_INTEGRITY.
   */
  static open(raw: unknown, kek: GalleryKey | undefined, where: string): GalleryCipher {
    const k = raw as Partial<GalleryKeyring> | null;
    if (
      typeof k !== 'object' || k === null || k.alg !== GALLERY_CIPHER || typeof k.gallery !== 'string' || typeof k.kek !== 'string' ||
      typeof k.dataKey !== 'string' || !/^[0-9a-f]{16}$/.test(k.dataKey) || typeof k.wrapped !== 'string'
    ) {
      throw integrityError(`${where}: its encryption keyring is malformed (tampered or corrupted): restore the gallery from a backup (faceflow gallery import)`, { where });
    }
    if (!kek) {
      throw keyError(`${where} is encrypted (key ${k.kek}): set ${GALLERY_KEY_ENV} to the key file it was sealed with`, { where, keyId: k.kek });
    }
    if (kek.id !== k.kek) {
      throw keyError(`${where} is sealed under key ${k.kek}, but ${GALLERY_KEY_ENV} holds key ${kek.id}: set it to the gallery's key file (after a rotation, the new one)`, {
        where,
        keyId: k.kek,
        given: kek.id,
      });
    }
    const dk = unseal(GalleryKey.bytesOf(kek), k.wrapped, wrapAad(k.gallery, k.dataKey, k.kek));
    if (dk?.length !== 32) {
      throw integrityError(`${where}: its data key does not authenticate under key ${kek.id} (the keyring was tampered with or corrupted): restore the gallery from a backup`, { where, keyId: kek.id });
    }
    return new GalleryCipher(dk, { alg: GALLERY_CIPHER, gallery: k.gallery, kek: k.kek, dataKey: k.dataKey, wrapped: k.wrapped });
  }

  /**
   * This data key under a keyring that names it (same gallery, same data key id): after another process
   * re-wrapped it under a new KEK, a running process keeps its data key without needing the new KEK; its
   * next start needs the new key file. Undefined when the keyring names another gallery or data key.
   */
  adopt(keyring: GalleryKeyring): GalleryCipher | undefined {
    return keyring.gallery === this.keyring.gallery && keyring.dataKey === this.keyring.dataKey ? new GalleryCipher(this.#dk, keyring) : undefined;
  }

  /** The same data key wrapped under another KEK (a KEK rotation: records stay as they are). */
  rewrap(kek: GalleryKey): GalleryCipher {
    return GalleryCipher.wrap(this.#dk, this.keyring.gallery, this.keyring.dataKey, kek);
  }

  /** A new data key for the same gallery, wrapped under `kek` (a DK rotation: every record is re-sealed). */
  withNewDataKey(kek: GalleryKey): GalleryCipher {
    return GalleryCipher.wrap(randomBytes(32), this.keyring.gallery, randomBytes(8).toString('hex'), kek);
  }

  /** Seals one identity (id bound as additional data, not encrypted). */
  seal(i: GalleryIdentity): string {
    const plain = Buffer.from(JSON.stringify({ e: i.embeddings, m: i.metadata, t: i.updatedAt }), 'utf8');
    return `${RECORD_PREFIX}${this.keyring.dataKey}.${seal(this.#dk, plain, recordAad(this.keyring.gallery, i.id, this.keyring.dataKey))}`;
  }

  /** Opens the sealed record stored for `id`; GALLERY_INTEGRITY when it does not authenticate there. */
  open(id: string, raw: string, where: string): GalleryIdentity {
    const dkId = sealedRecordKeyId(raw);
    const tampered = (why: string): FaceflowError =>
      integrityError(`${where}: the record of identity ${JSON.stringify(id)} ${why} (tampered with, corrupted, or copied from another name or gallery): nothing was changed; restore it from a backup`, {
        where,
        identity: id,
      });
    if (dkId === undefined) throw tampered('is not a sealed record');
    if (dkId !== this.keyring.dataKey) throw tampered(`names data key ${dkId}, not the gallery's ${this.keyring.dataKey}`);
    const plain = unseal(this.#dk, raw.slice(RECORD_PREFIX.length + dkId.length + 1), recordAad(this.keyring.gallery, id, dkId));
    if (!plain) throw tampered('does not authenticate');
    const r = JSON.parse(plain.toString('utf8')) as { e: number[][]; m: Record<string, string>; t: number };
    return { id, embeddings: r.e, metadata: r.m ?? {}, updatedAt: r.t ?? 0 };
  }

  toJSON(): { gallery: string; kek: string; dataKey: string } {
    return { gallery: this.keyring.gallery, kek: this.keyring.kek, dataKey: this.keyring.dataKey };
  }

  [inspect.custom](): string {
    return `GalleryCipher(${this.keyring.gallery}, kek ${this.keyring.kek}, dk ${this.keyring.dataKey})`;
  }
}
