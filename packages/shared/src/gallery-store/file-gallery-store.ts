/**
 * The one gallery file format, written by `faceflow enroll` (the engine's Gallery), by FileGalleryStore
 * (small single-host deployments) and read by `faceflow run`:
 *
 *     {"format":"faceflow-gallery","version":1,"model":"faceapi-recognition","dim":128,"galleryVersion":7,
 *      "updatedAt":1764390000000,
 *      "identities":[{"id":"alice","embeddings":[[...],[...]],"metadata":{},"updatedAt":1764390000000}]}
 *
 * `model` names the embedding model the vectors came from (a gallery never mixes models); `dim` their size.
 * Both are optional for a store that has not been given them yet, and checked when present.
 *
 * An encrypted gallery (issue 15, gallery-crypto.ts) is format version 2: the same head, plus the keyring
 * ("encryption": gallery id, key ids, the data key wrapped under the key-encryption key), and each identity
 * as its id and its sealed record (embeddings, metadata, last change):
 *
 *     {"format":"faceflow-gallery","version":2,"model":"faceapi-recognition","dim":128,"galleryVersion":7,
 *      "updatedAt":1764390000000,"encryption":{"alg":"AES-256-GCM","gallery":"..","kek":"..","dataKey":"..","wrapped":".."},
 *      "identities":[{"id":"alice","sealed":"ff1.<data key id>.<base64>"}]}
 *
 * A plaintext gallery stays version 1 (what older builds read); a build without this support refuses a
 * version 2 file by its version rather than misreading it.
 *
 * `version` is the file format's version; `galleryVersion` the store version (see types.ts). Every change
 * writes the whole file to a temporary file in the same directory, fsyncs it and renames it over the old
 * one, so a reader (or a crash) sees the old or the new gallery, never half of one. Only this process's
 * listeners are notified; another process sees changes when it re-opens the file.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { FaceflowError } from '../errors.js';
import type { Logger } from '../observability.js';
import { GalleryCipher, type GalleryKey, type GalleryKeyring } from './gallery-crypto.js';
import { MemoryGalleryStore, type GalleryState } from './memory-gallery-store.js';
import { checkEmbeddings, checkIdentityId, checkMetadata, type GalleryIdentity, type GallerySnapshot, type KeyRotation, type KeyRotationResult } from './types.js';

export const GALLERY_FILE_FORMAT = 'faceflow-gallery';
export const GALLERY_FILE_VERSION = 1;
/** The format version of an encrypted gallery file. */
export const GALLERY_FILE_SEALED_VERSION = 2;

export interface GalleryFile {
  format: typeof GALLERY_FILE_FORMAT;
  version: typeof GALLERY_FILE_VERSION;
  model?: string;
  dim?: number;
  galleryVersion: number;
  updatedAt: number;
  identities: GalleryIdentity[];
}

/** An encrypted gallery file (format version 2). */
export interface SealedGalleryFile extends Omit<GalleryFile, 'version' | 'identities'> {
  version: typeof GALLERY_FILE_SEALED_VERSION;
  encryption: GalleryKeyring;
  identities: { id: string; sealed: string }[];
}

function formatError(path: string, problem: string, cause?: unknown): FaceflowError {
  return new FaceflowError('GALLERY_FORMAT', `gallery file ${path}: ${problem}`, {
    ...(cause === undefined ? {} : { cause }),
    details: { path },
  });
}

/** What a gallery file holds: the store snapshot plus the model and size of its embeddings. */
export interface GalleryFileContent extends GallerySnapshot {
  model?: string;
  dim?: number;
  /** An encrypted file's unwrapped data key (absent: the file is plaintext). */
  cipher?: GalleryCipher;
}

/**
 * Parses and checks the content of a gallery file; an encrypted one is opened with `key` (none, or another
 * key: GALLERY_KEY; a record or keyring that does not authenticate: GALLERY_INTEGRITY).
 */
export function parseGalleryFile(text: string, path = '(gallery)', key?: GalleryKey): GalleryFileContent {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw formatError(path, 'is not valid JSON', e);
  }
  const d = doc as Partial<GalleryFile> | null;
  if (typeof d !== 'object' || d === null || d.format !== GALLERY_FILE_FORMAT) throw formatError(path, `"format" must be "${GALLERY_FILE_FORMAT}"`);
  const sealed = (d.version as number) === GALLERY_FILE_SEALED_VERSION;
  if (d.version !== GALLERY_FILE_VERSION && !sealed) {
    throw formatError(path, `format version ${JSON.stringify(d.version)} is not supported (this build reads versions ${GALLERY_FILE_VERSION} and ${GALLERY_FILE_SEALED_VERSION})`);
  }
  if (!Number.isSafeInteger(d.galleryVersion) || (d.galleryVersion as number) < 0) throw formatError(path, '"galleryVersion" must be an integer >= 0');
  if (d.model !== undefined && (typeof d.model !== 'string' || d.model === '')) throw formatError(path, '"model" must be a non-empty string');
  if (d.dim !== undefined && (!Number.isSafeInteger(d.dim) || (d.dim as number) <= 0)) throw formatError(path, '"dim" must be a positive integer');
  if (!Array.isArray(d.identities)) throw formatError(path, '"identities" must be an array');
  // the key is checked before any record, so a missing or wrong key is named as such
  const cipher = sealed ? GalleryCipher.open((d as Partial<SealedGalleryFile>).encryption, key, `gallery file ${path}`) : undefined;
  const seen = new Set<string>();
  let dim: number | undefined = d.dim;
  const identities = d.identities.map((raw: unknown, i): GalleryIdentity => {
    let r = raw as Partial<GalleryIdentity> | null;
    try {
      const id = checkIdentityId(r?.id);
      if (seen.has(id)) throw formatError(path, `identity ${JSON.stringify(id)} appears twice`);
      seen.add(id);
      if (cipher) {
        const s = (raw as { sealed?: unknown }).sealed;
        r = cipher.open(id, typeof s === 'string' ? s : '', `gallery file ${path}`);
      }
      dim = checkEmbeddings(id, r?.embeddings, dim);
      return { id, embeddings: r!.embeddings!, metadata: checkMetadata(r!.metadata), updatedAt: Number(r!.updatedAt ?? 0) };
    } catch (e) {
      if (e instanceof FaceflowError && (e.code === 'GALLERY_FORMAT' || e.code === 'GALLERY_INTEGRITY')) throw e;
      throw formatError(path, `identities[${i}]: ${(e as Error).message}`, e);
    }
  });
  return {
    version: d.galleryVersion as number,
    identities,
    ...(d.model !== undefined ? { model: d.model } : {}),
    ...(dim !== undefined ? { dim } : {}),
    ...(cipher ? { cipher } : {}),
  };
}

/** The gallery file document sealed under `cipher` (format version 2): ids in the clear, records sealed. */
export function sealGalleryFile(doc: GalleryFile, cipher: GalleryCipher): SealedGalleryFile {
  const { identities, version: _v, ...head } = doc;
  return { ...head, version: GALLERY_FILE_SEALED_VERSION, encryption: cipher.keyring, identities: identities.map((i) => ({ id: i.id, sealed: cipher.seal(i) })) };
}

/** The text of a gallery file: sealed under `cipher` when given, else plaintext (version 1). */
export function galleryFileText(doc: GalleryFile, cipher?: GalleryCipher): string {
  return JSON.stringify(cipher ? sealGalleryFile(doc, cipher) : doc);
}

export function serializeGallery(state: Pick<GalleryState, 'version' | 'identities' | 'model'>, meta: { model?: string } = {}, cipher?: GalleryCipher): string {
  return galleryFileText(galleryFileOf({ version: state.version, identities: [...state.identities.values()], ...(state.model !== undefined ? { model: state.model } : {}) }, meta), cipher);
}

/** A snapshot as the gallery file document (the format `faceflow enroll` writes); `meta.model` wins over the snapshot's. */
export function galleryFileOf(snap: GallerySnapshot, meta: { model?: string } = {}): GalleryFile {
  const dim = snap.identities.find((i) => i.embeddings[0])?.embeddings[0]?.length;
  const model = meta.model ?? snap.model;
  return {
    format: GALLERY_FILE_FORMAT,
    version: GALLERY_FILE_VERSION,
    ...(model !== undefined ? { model } : {}),
    ...(dim !== undefined ? { dim } : {}),
    galleryVersion: snap.version,
    updatedAt: Date.now(),
    identities: snap.identities,
  };
}

/** Writes `data` to `path` atomically: temp file in the same directory, fsync, rename, fsync of the directory. */
export async function writeFileAtomic(path: string, data: string): Promise<void> {
  const dir = dirname(path);
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    await mkdir(dir, { recursive: true });
    // owner only (issue 15): a gallery holds biometric templates, sealed or not
    const fh = await open(tmp, 'w', 0o600);
    try {
      await fh.writeFile(data, 'utf8');
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true }).catch(() => undefined);
    throw new FaceflowError('STORE_UNAVAILABLE', `could not write ${path}: ${(e as Error).message}`, { cause: e, details: { path } });
  }
  try {
    const d = await open(dir, 'r');
    try {
      await d.sync();
    } finally {
      await d.close();
    }
  } catch {
    // some filesystems cannot fsync a directory; the rename is still atomic
  }
}

export class FileGalleryStore extends MemoryGalleryStore {
  private constructor(
    readonly path: string,
    initial: GallerySnapshot,
    /** Seals every write (absent: plaintext, no key configured). */
    private cipher: GalleryCipher | undefined,
    logger?: Logger,
  ) {
    super({ initial, ...(logger ? { logger } : {}) });
  }

  /** The embedding model recorded in the file (kept on every write; an import may set it). */
  get model(): string | undefined {
    return this.state.model;
  }

  /** Whether writes are sealed (a key was given, or the file is encrypted). */
  get encrypted(): boolean {
    return this.cipher !== undefined;
  }

  /**
   * Opens the gallery at `path`; a missing file is an empty gallery (created on the first change).
   * `model`, when given, must match the file's (or is recorded in a file that has none). `key`: the
   * key-encryption key (FACEFLOW_GALLERY_KEY_FILE): an encrypted file needs it, and with it a plaintext file
   * is sealed on its next write (a new gallery id and data key).
   */
  static async open(path: string, options: { logger?: Logger; model?: string; key?: GalleryKey } = {}): Promise<FileGalleryStore> {
    let text: string | undefined;
    try {
      text = await readFile(path, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') {
        throw new FaceflowError('STORE_UNAVAILABLE', `could not read ${path}: ${(e as Error).message}`, { cause: e, details: { path } });
      }
    }
    const initial: GalleryFileContent = text === undefined ? { version: 0, identities: [] } : parseGalleryFile(text, path, options.key);
    if (options.model !== undefined && initial.model !== undefined && initial.model !== options.model) {
      throw formatError(path, `holds "${initial.model}" embeddings, not "${options.model}"`);
    }
    const model = initial.model ?? options.model;
    const cipher = initial.cipher ?? (options.key ? GalleryCipher.create(options.key) : undefined);
    if (!cipher) options.logger?.warn('gallery templates are stored in plaintext: set FACEFLOW_GALLERY_KEY_FILE to encrypt them (docs/security.md)', { path });
    else if (!initial.cipher && initial.identities.length > 0) options.logger?.info('plaintext gallery file: its next write seals it', { path, keyId: options.key!.id });
    return new FileGalleryStore(path, { version: initial.version, identities: initial.identities, ...(model !== undefined ? { model } : {}) }, cipher, options.logger);
  }

  // `imported` is not written: a file is its own source of truth, never a cache that loses its gallery
  protected override async persist(next: GalleryState): Promise<void> {
    await writeFileAtomic(this.path, serializeGallery(next, {}, this.cipher));
  }

  /** See GalleryStore.rotateKey: the file is rewritten at once (atomically), sealed as asked. */
  async rotateKey(o: KeyRotation): Promise<KeyRotationResult> {
    return this.serially(async () => {
      const before = this.cipher;
      const next = rotatedCipher(before, o);
      await writeFileAtomic(this.path, serializeGallery(this.state, {}, next));
      this.cipher = next;
      return rotationResult(before, next, o, this.state.identities.size);
    });
  }
}

/** The cipher a rotation gives (gallery-crypto.ts): re-wrapped, or a new data key (always for a plaintext gallery). */
export function rotatedCipher(before: GalleryCipher | undefined, o: KeyRotation): GalleryCipher {
  if (!before) return GalleryCipher.create(o.key);
  return o.newDataKey ? before.withNewDataKey(o.key) : before.rewrap(o.key);
}

export function rotationResult(before: GalleryCipher | undefined, next: GalleryCipher, o: KeyRotation, identities: number): KeyRotationResult {
  return {
    ...(before ? { fromKey: before.kekId, fromDataKey: before.dataKeyId } : {}),
    toKey: next.kekId,
    toDataKey: next.dataKeyId,
    resealed: !before || o.newDataKey ? identities : 0,
  };
}
