/**
 * The gallery in Redis (services; the only file that imports ioredis). Keys, under a configurable prefix
 * (default "faceflow:gallery:"):
 *
 *     <prefix>version      integer, the gallery version (INCR on every change)
 *     <prefix>identities   hash: identity id -> JSON {id, embeddings, metadata, updatedAt}
 *     <prefix>dim          the embedding dimension of the gallery
 *     <prefix>model        the embedding model of the gallery, when an import recorded one
 *     <prefix>imported     the version the last import (replace) produced: see types.ts
 *     <prefix>epoch        a random id written with the gallery's first change: the same as long as the store
 *                          keeps its data, another once it lost them and was written again (types.ts)
 *     <prefix>changes      pub/sub channel: one GalleryChange (encoded, see schemas) per change
 *     <prefix>keyring      an encrypted gallery's keyring (gallery-crypto.ts: its data key wrapped under the
 *                          key-encryption key); its identities' values are then sealed records "ff1...."
 *     <prefix>identities:import:<id>   a streamed import's records while it runs (expires if abandoned)
 *
 * Encryption (issue 15): a store opened with a key seals every record it writes; an encrypted gallery cannot
 * be opened without its key (GALLERY_KEY). Every write that carries templates names the keyring it sealed
 * under, and the script refuses it (then the keyring is read again) when the stored keyring is another, so
 * that a writer without the key never adds a plaintext record to a gallery encrypted meanwhile, nor one under
 * a data key rotated away. A store with a key over a plaintext gallery seals it whole before its first write
 * (an import seals it in the same script). The keyring is read in the same transaction as the records.
 *
 * A change is one Lua script: write the identity, INCR the version and PUBLISH the change, atomically, so
 * a notification always carries the version its change produced (and the store's epoch). Pub/sub is fire-and-forget: a subscriber
 * that was disconnected misses changes, which it notices as a gap in versions (then reload a snapshot).
 * `replace` (an import) is one script too: the identities hash is rewritten, the version set past both the
 * store's and the imported gallery's, and one "import" change published. A large import (`replaceStream`, or
 * `replace` of more than a few thousand identities; issue 14) writes its records in bounded batches to a
 * staging hash, and one script swaps it in with the same version, mark and change.
 * `append` is a compare-and-set on the identity's stored record, retried on a concurrent write.
 * Connection failures are FaceflowError('STORE_UNAVAILABLE', retriable), except those of the connection's
 * security (issue 15: an ACL login refused, an untrusted certificate, plaintext against TLS), which are
 * FaceflowError('TRANSPORT_SECURITY'), not retriable, with one line naming the variable to fix
 * (transport-security.ts). TLS (rediss://) and the ACL login come from `security` (config.ts redisConnectionOf).
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import type { RedisSecurity } from '../config.js';
import { FaceflowError } from '../errors.js';
import { silentLogger, type Logger } from '../observability.js';
import { diagnoseTransport, securityError } from '../transport-security.js';
import { GalleryChangeSchema, type GalleryChange } from '../schemas/gallery-change.js';
import { rotatedCipher, rotationResult } from './file-gallery-store.js';
import { GalleryCipher, isSealedRecord, sealedRecordKeyId, type GalleryKey, type GalleryKeyring } from './gallery-crypto.js';
import { checkReplacement, checkReplacementVersion, replacementChecker } from './memory-gallery-store.js';
import {
  checkEmbeddings,
  checkIdentityId,
  checkMetadata,
  notifyAll,
  type GalleryIdentity,
  type GalleryListener,
  type GalleryReplacement,
  type GallerySnapshot,
  type GallerySnapshotHead,
  type GalleryStore,
  type KeyRotation,
  type KeyRotationResult,
  type PutOptions,
  type Unsubscribe,
} from './types.js';

export interface RedisGalleryStoreOptions {
  /** redis://host:port[/db], rediss:// for TLS */
  url: string;
  /** ACL user and password, TLS files (config.ts `redisConnectionOf`). */
  security?: RedisSecurity;
  /** Prefix of every key and of the channel (default "faceflow:gallery:"). */
  keyPrefix?: string;
  logger?: Logger;
  /** Connect timeout in ms (default 5000). */
  connectTimeoutMs?: number;
  /** The key-encryption key (FACEFLOW_GALLERY_KEY_FILE): seals every write; an encrypted gallery needs it. */
  key?: GalleryKey;
}

export const DEFAULT_GALLERY_KEY_PREFIX = 'faceflow:gallery:';

// KEYS: version, identities, dim, epoch, keyring. ARGV: id, record, dim, mode (set|cas), expected record ('' = none),
// change JSON without its closing "version": value, channel, a new epoch (kept when there is one), the
// keyring the record was sealed under ('' = plaintext).
const PUT_SCRIPT = `
if (redis.call('GET', KEYS[5]) or '') ~= ARGV[9] then return -3 end
local cur = redis.call('HGET', KEYS[2], ARGV[1])
if ARGV[4] == 'cas' and (cur or '') ~= ARGV[5] then return -1 end
local d = redis.call('GET', KEYS[3])
local others = redis.call('HLEN', KEYS[2]) - (cur and 1 or 0)
if d and d ~= ARGV[3] and others > 0 then return -2 end
redis.call('SET', KEYS[3], ARGV[3])
redis.call('SETNX', KEYS[4], ARGV[8])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
local v = redis.call('INCR', KEYS[1])
redis.call('PUBLISH', ARGV[7], ARGV[6] .. v .. ',"epoch":"' .. redis.call('GET', KEYS[4]) .. '"}')
return v
`;

// KEYS: version, identities, epoch. ARGV: id, change JSON prefix, channel.
const DELETE_SCRIPT = `
if redis.call('HDEL', KEYS[2], ARGV[1]) == 0 then return 0 end
local v = redis.call('INCR', KEYS[1])
local ep = redis.call('GET', KEYS[3])
redis.call('PUBLISH', ARGV[3], ARGV[2] .. v .. (ep and (',"epoch":"' .. ep .. '"') or '') .. '}')
return v
`;

// What an import does once its records are in place (REPLACE_SCRIPT, SWAP_SCRIPT): the keyring, epoch, dim,
// model, version (past both the store's and the imported gallery's) and import mark, then the one change.
const REPLACE_TAIL = `
if ARGV[8] ~= '' then redis.call('SET', KEYS[7], ARGV[8]) end
redis.call('SETNX', KEYS[6], ARGV[6])
if ARGV[3] ~= '' then redis.call('SET', KEYS[3], ARGV[3]) else redis.call('DEL', KEYS[3]) end
if ARGV[2] ~= '' then redis.call('SET', KEYS[4], ARGV[2]) end
redis.call('SET', KEYS[1], v)
redis.call('SET', KEYS[5], v)
redis.call('PUBLISH', ARGV[5], ARGV[4] .. v .. ',"epoch":"' .. redis.call('GET', KEYS[6]) .. '"}')
return v
`;

// KEYS: version, identities, dim, model, imported, epoch, keyring. ARGV: imported gallery's version, model ('' = keep),
// dim ('' = none), change JSON prefix, channel, a new epoch (kept when there is one), the keyring expected
// ('' = none), the keyring the records are sealed under ('' = plaintext), then id, record pairs.
const REPLACE_SCRIPT = `
if (redis.call('GET', KEYS[7]) or '') ~= ARGV[7] then return -3 end
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
local v = math.max(cur, tonumber(ARGV[1])) + 1
redis.call('DEL', KEYS[2])
for i = 9, #ARGV, 2 do redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1]) end
${REPLACE_TAIL}`;

// A streamed import (issue 14): the records were written in batches to a staging hash (KEYS[8]); this puts it
// in place of the identities at once. The old hash is UNLINKed (freed in the background: a million fields
// would block Redis for a second), and the staging hash's expiry (an abandoned import frees itself) removed.
// KEYS: REPLACE_SCRIPT's, then the staging hash. ARGV: REPLACE_SCRIPT's first 8.
const SWAP_SCRIPT = `
if (redis.call('GET', KEYS[7]) or '') ~= ARGV[7] then redis.call('UNLINK', KEYS[8]) return -3 end
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
local v = math.max(cur, tonumber(ARGV[1])) + 1
redis.call('UNLINK', KEYS[2])
if redis.call('EXISTS', KEYS[8]) == 1 then
  redis.call('RENAME', KEYS[8], KEYS[2])
  redis.call('PERSIST', KEYS[2])
end
${REPLACE_TAIL}`;

/** Identities per HSET of a streamed import: a bounded command (about 2.5 MB of plaintext 128-d records). */
const IMPORT_BATCH = 1000;
/** Above this many identities `replace` streams too, rather than send them all as one script's arguments. */
const REPLACE_SCRIPT_MAX = 2000;
/** An abandoned streamed import's staging hash expires after this (refreshed by every batch). */
const STAGING_TTL_MS = 3_600_000;

// A key rotation or the sealing of a plaintext gallery: nothing changed since the snapshot it was built from
// (version and keyring), then the new keyring, and with mode "all" every record re-sealed.
// KEYS: version, identities, keyring. ARGV: version read, keyring read ('' = none), new keyring, mode (all|keyring), pairs.
const RESEAL_SCRIPT = `
if (redis.call('GET', KEYS[1]) or '0') ~= ARGV[1] then return -1 end
if (redis.call('GET', KEYS[3]) or '') ~= ARGV[2] then return -1 end
if ARGV[4] == 'all' then
  redis.call('DEL', KEYS[2])
  for i = 5, #ARGV, 2 do redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1]) end
end
redis.call('SET', KEYS[3], ARGV[3])
return 1
`;

const newEpoch = (): string => randomBytes(8).toString('hex');

function storeError(e: unknown, what: string): FaceflowError {
  if (e instanceof FaceflowError) return e;
  return new FaceflowError('STORE_UNAVAILABLE', `redis gallery: ${what}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
}

/** The encoded change with its version left open: the Lua script appends `<version>,"epoch":"<epoch>"}`. */
function changePrefix(type: GalleryChange['type'], identity: string, ts: number): string {
  return `${JSON.stringify({ schema: GalleryChangeSchema.name, v: GalleryChangeSchema.version, type, identity, ts }).slice(0, -1)},"version":`;
}

export class RedisGalleryStore implements GalleryStore {
  private subscriber: Redis | undefined;
  private subscribing: Promise<void> | undefined;
  private readonly listeners = new Set<GalleryListener>();
  private readonly keys: { version: string; identities: string; dim: string; model: string; imported: string; epoch: string; keyring: string; channel: string };
  private closed = false;
  /** The keyring as last read ('' = none: a plaintext gallery) and its unwrapped data key. */
  private keyringRaw = '';
  private cipher: GalleryCipher | undefined;

  private constructor(
    private readonly redis: Redis,
    readonly keyPrefix: string,
    private readonly logger: Logger,
    private readonly key: GalleryKey | undefined,
  ) {
    this.keys = {
      version: `${keyPrefix}version`,
      identities: `${keyPrefix}identities`,
      dim: `${keyPrefix}dim`,
      model: `${keyPrefix}model`,
      imported: `${keyPrefix}imported`,
      epoch: `${keyPrefix}epoch`,
      keyring: `${keyPrefix}keyring`,
      channel: `${keyPrefix}changes`,
    };
  }

  static async open(options: RedisGalleryStoreOptions): Promise<RedisGalleryStore> {
    const logger = options.logger ?? silentLogger;
    const redis = await connectRedis(options, logger);
    const store = new RedisGalleryStore(redis, options.keyPrefix ?? DEFAULT_GALLERY_KEY_PREFIX, logger, options.key);
    try {
      // a missing or wrong key fails here, at start-up, with one line
      await store.syncKeyring(await redis.get(store.keys.keyring));
    } catch (e) {
      redis.disconnect();
      throw storeError(e, 'keyring');
    }
    if (!store.cipher && !options.key) logger.warn('gallery templates are stored in plaintext: set FACEFLOW_GALLERY_KEY_FILE to encrypt them (docs/security.md)', { keyPrefix: store.keyPrefix });
    if (!store.cipher && options.key) logger.info('plaintext gallery: sealed whole before its next write', { keyPrefix: store.keyPrefix, keyId: options.key.id });
    return store;
  }

  /** Whether the gallery is encrypted (as last read). */
  get encrypted(): boolean {
    return this.cipher !== undefined;
  }

  private get where(): string {
    return `redis gallery "${this.keyPrefix}"`;
  }

  /** Takes the keyring read from Redis (null: none) as the one in force. */
  private async syncKeyring(raw: string | null): Promise<void> {
    const r = raw ?? '';
    if (r === this.keyringRaw) return;
    if (r === '') {
      this.cipher = undefined;
      this.keyringRaw = '';
      return;
    }
    let parsed: GalleryKeyring | undefined;
    try {
      parsed = JSON.parse(r) as GalleryKeyring;
    } catch {
      parsed = undefined;
    }
    const kept = parsed && this.cipher?.adopt(parsed);
    this.cipher = kept ?? GalleryCipher.open(parsed, this.key, this.where);
    this.keyringRaw = r;
  }

  private async reloadKeyring(): Promise<void> {
    await this.syncKeyring(await this.redis.get(this.keys.keyring).catch((e: unknown) => Promise.reject(storeError(e, 'keyring'))));
  }

  /** A record as stored: sealed when the gallery is encrypted. */
  private encode(i: GalleryIdentity): string {
    return this.cipher ? this.cipher.seal(i) : JSON.stringify(i);
  }

  /** Opens a stored record under the keyring in force (read in the same transaction, or reloaded). */
  private async decode(raw: string, id: string): Promise<GalleryIdentity> {
    if (isSealedRecord(raw) && this.cipher?.dataKeyId !== sealedRecordKeyId(raw)) await this.reloadKeyring(); // rotated meanwhile
    if (this.cipher) return this.cipher.open(id, raw, this.where);
    if (isSealedRecord(raw)) {
      throw new FaceflowError('GALLERY_INTEGRITY', `${this.where}: identity ${JSON.stringify(id)} holds a sealed record but the gallery has no keyring (${this.keys.keyring} was deleted?): restore it from a gallery file (faceflow gallery import)`, {
        details: { identity: id, key: this.keys.keyring },
      });
    }
    return this.parse(raw, id);
  }

  /** Before a write of templates: a store with a key over a plaintext gallery seals it whole first. */
  private async writable(): Promise<void> {
    if (this.key && !this.cipher) await this.rekey({ key: this.key }, true);
  }

  private parse(raw: string, id: string): GalleryIdentity {
    try {
      const r = JSON.parse(raw) as GalleryIdentity;
      if (r.id !== id || !Array.isArray(r.embeddings)) throw new Error('not an identity record');
      return { id: r.id, embeddings: r.embeddings, metadata: r.metadata ?? {}, updatedAt: r.updatedAt ?? 0 };
    } catch (e) {
      throw new FaceflowError('GALLERY_FORMAT', `redis gallery: bad record for identity ${JSON.stringify(id)} under ${this.keys.identities}`, {
        cause: e,
        details: { identity: id, key: this.keys.identities },
      });
    }
  }

  private check(): void {
    if (this.closed) throw new FaceflowError('STORE_UNAVAILABLE', 'redis gallery store is closed', { retriable: false });
  }

  async put(id: string, embeddings: number[][], options: PutOptions = {}): Promise<GalleryChange> {
    this.check();
    checkIdentityId(id);
    const metadata = options.metadata === undefined ? undefined : checkMetadata(options.metadata);
    checkEmbeddings(id, embeddings);
    for (let attempt = 1; attempt <= 20; attempt++) {
      await this.writable();
      const ts = Date.now();
      let curRaw: string | null = null;
      let cur: GalleryIdentity | undefined;
      if (options.mode === 'append' || metadata === undefined) {
        curRaw = await this.readOne(id);
        cur = curRaw === null ? undefined : await this.decode(curRaw, id);
      }
      const all = options.mode === 'append' && cur ? [...cur.embeddings, ...embeddings] : embeddings;
      const dim = checkEmbeddings(id, all);
      const record: GalleryIdentity = { id, embeddings: all, metadata: metadata ?? cur?.metadata ?? {}, updatedAt: ts };
      // a plain replace with new metadata needs no compare-and-set; anything built on the old record does
      const cas = curRaw !== null || options.mode === 'append' || metadata === undefined;
      let v: number;
      try {
        v = (await this.redis.eval(
          PUT_SCRIPT,
          5,
          this.keys.version,
          this.keys.identities,
          this.keys.dim,
          this.keys.epoch,
          this.keys.keyring,
          id,
          this.encode(record),
          String(dim),
          cas ? 'cas' : 'set',
          curRaw ?? '',
          changePrefix('enroll', id, ts),
          this.keys.channel,
          newEpoch(),
          this.keyringRaw,
        )) as number;
      } catch (e) {
        throw storeError(e, 'put');
      }
      if (v === -1) continue; // someone else changed this identity meanwhile: read again
      if (v === -3) {
        await this.keyringChanged();
        continue;
      }
      if (v === -2) {
        const galleryDim = await this.redis.get(this.keys.dim).catch(() => '?');
        throw new FaceflowError('INVALID_ARGUMENT', `gallery: identity ${JSON.stringify(id)}: embeddings have dimension ${dim}, the gallery's is ${galleryDim}`, {
          details: { identity: id, field: 'embeddings' },
        });
      }
      return { type: 'enroll', identity: id, version: v, ts };
    }
    throw new FaceflowError('TIMEOUT', `gallery: identity ${JSON.stringify(id)} kept changing under a concurrent writer`, { details: { identity: id } });
  }

  async delete(id: string): Promise<GalleryChange | null> {
    this.check();
    checkIdentityId(id);
    const ts = Date.now();
    let v: number;
    try {
      v = (await this.redis.eval(DELETE_SCRIPT, 3, this.keys.version, this.keys.identities, this.keys.epoch, id, changePrefix('delete', id, ts), this.keys.channel)) as number;
    } catch (e) {
      throw storeError(e, 'delete');
    }
    return v === 0 ? null : { type: 'delete', identity: id, version: v, ts };
  }

  async replace(r: GalleryReplacement): Promise<GalleryChange> {
    this.check();
    const identities = [...checkReplacement(r).values()];
    if (identities.length > REPLACE_SCRIPT_MAX) {
      const batches = function* (): Generator<GalleryIdentity[]> {
        for (let i = 0; i < identities.length; i += IMPORT_BATCH) yield identities.slice(i, i + IMPORT_BATCH);
      };
      for (let attempt = 1; attempt <= 20; attempt++) {
        const c = await this.importStreamed(batches(), r, false);
        if (c) return c;
      }
      throw new FaceflowError('TIMEOUT', `${this.where}: the keyring kept changing under a concurrent rotation`);
    }
    const dim = identities[0]?.embeddings[0]?.length;
    for (let attempt = 1; attempt <= 20; attempt++) {
      const ts = Date.now();
      // a plaintext gallery replaced by a store with a key is sealed in the same script, under a new keyring
      const fresh = this.key && !this.cipher ? GalleryCipher.create(this.key) : undefined;
      const cipher = fresh ?? this.cipher;
      const pairs = identities.flatMap((i) => [i.id, cipher ? cipher.seal(i) : JSON.stringify(i)]);
      let v: number;
      try {
        v = (await this.redis.eval(REPLACE_SCRIPT, 7, ...this.importKeys(), ...this.importArgs(r, dim, ts, this.keyringRaw, fresh), ...pairs)) as number;
      } catch (e) {
        throw storeError(e, 'replace');
      }
      if (v === -3) {
        await this.keyringChanged();
        continue;
      }
      if (fresh) {
        this.cipher = fresh;
        this.keyringRaw = JSON.stringify(fresh.keyring);
      }
      return { type: 'import', identity: '', version: v, ts };
    }
    throw new FaceflowError('TIMEOUT', `${this.where}: the keyring kept changing under a concurrent rotation`);
  }

  /**
   * See GalleryStore.replaceStream: every batch checked (as replace checks), sealed when the gallery is (or
   * becomes) encrypted, and written with one HSET to a staging hash; the last step swaps it in (SWAP_SCRIPT).
   * One batch is held at a time, so memory stays bounded however large the gallery. A keyring rotated while
   * the batches went in cannot be retried here (they were consumed): the import is refused, nothing changed.
   */
  async replaceStream(batches: AsyncIterable<GalleryIdentity[]> | Iterable<GalleryIdentity[]>, r: Omit<GalleryReplacement, 'identities'> = {}): Promise<GalleryChange> {
    this.check();
    checkReplacementVersion(r.version);
    const c = await this.importStreamed(batches, r, true);
    if (!c) throw new FaceflowError('STORE_UNAVAILABLE', `${this.where}: the gallery's keyring changed during the import (a key rotation?): nothing was replaced; run the import again`);
    return c;
  }

  /** undefined: the keyring changed meanwhile (nothing replaced; the caller may retry with the same batches). */
  private async importStreamed(batches: AsyncIterable<GalleryIdentity[]> | Iterable<GalleryIdentity[]>, r: Omit<GalleryReplacement, 'identities'>, check: boolean): Promise<GalleryChange | undefined> {
    const fresh = this.key && !this.cipher ? GalleryCipher.create(this.key) : undefined;
    const cipher = fresh ?? this.cipher;
    const expected = this.keyringRaw;
    const staging = `${this.keys.identities}:import:${newEpoch()}`;
    const checker = replacementChecker();
    let dim: number | undefined;
    try {
      for await (const batch of batches) {
        if (!Array.isArray(batch)) throw new FaceflowError('INVALID_ARGUMENT', 'gallery: each batch of a streamed import must be an array of identities', { details: { field: 'identities' } });
        if (batch.length === 0) continue;
        const pairs: string[] = [];
        for (const raw of batch) {
          const i = check ? checker.check(raw) : raw;
          dim ??= i.embeddings[0]?.length;
          pairs.push(i.id, cipher ? cipher.seal(i) : JSON.stringify(i));
        }
        const res = await this.redis.multi().hset(staging, ...pairs).pexpire(staging, STAGING_TTL_MS).exec().catch((e: unknown) => Promise.reject(storeError(e, 'import')));
        const failed = res?.find(([e]) => e)?.[0];
        if (!res || failed) throw storeError(failed ?? new Error('transaction aborted'), 'import');
      }
      const ts = Date.now();
      const v = (await this.redis.eval(SWAP_SCRIPT, 8, ...this.importKeys(), staging, ...this.importArgs(r, dim, ts, expected, fresh)).catch((e: unknown) => Promise.reject(storeError(e, 'import')))) as number;
      if (v === -3) {
        await this.keyringChanged();
        return undefined;
      }
      if (fresh) {
        this.cipher = fresh;
        this.keyringRaw = JSON.stringify(fresh.keyring);
      }
      return { type: 'import', identity: '', version: v, ts };
    } catch (e) {
      await this.redis.unlink(staging).catch(() => undefined);
      throw e;
    }
  }

  /** REPLACE_SCRIPT's and SWAP_SCRIPT's keys (SWAP_SCRIPT's staging hash follows them). */
  private importKeys(): string[] {
    const k = this.keys;
    return [k.version, k.identities, k.dim, k.model, k.imported, k.epoch, k.keyring];
  }

  /** REPLACE_SCRIPT's and SWAP_SCRIPT's first 8 arguments (see REPLACE_SCRIPT). */
  private importArgs(r: Omit<GalleryReplacement, 'identities'>, dim: number | undefined, ts: number, expectedKeyring: string, fresh: GalleryCipher | undefined): string[] {
    return [String(r.version ?? 0), r.model ?? '', dim === undefined ? '' : String(dim), changePrefix('import', '', ts), this.keys.channel, newEpoch(), expectedKeyring, fresh ? JSON.stringify(fresh.keyring) : ''];
  }

  /** The keyring moved under a write (a rotation, or a gallery encrypted meanwhile): read it again. */
  private async keyringChanged(): Promise<void> {
    await this.reloadKeyring();
    if (this.cipher && !this.key) {
      throw new FaceflowError('GALLERY_KEY', `${this.where} was encrypted meanwhile (key ${this.cipher.kekId}): nothing written; set FACEFLOW_GALLERY_KEY_FILE to its key file`, {
        details: { keyId: this.cipher.kekId },
      });
    }
  }

  /** One identity's stored record, read with the keyring (one transaction). */
  private async readOne(id: string): Promise<string | null> {
    let res: [Error | null, unknown][] | null;
    try {
      res = await this.redis.multi().hget(this.keys.identities, id).get(this.keys.keyring).exec();
    } catch (e) {
      throw storeError(e, 'get');
    }
    if (!res) throw storeError(new Error('transaction aborted'), 'get');
    const failed = res.find(([e]) => e)?.[0];
    if (failed) throw storeError(failed, 'get');
    await this.syncKeyring(res[1]![1] as string | null);
    return res[0]![1] as string | null;
  }

  async get(id: string): Promise<GalleryIdentity | undefined> {
    this.check();
    const raw = await this.readOne(id);
    return raw === null ? undefined : this.decode(raw, id);
  }

  /**
   * Every identity, sorted by id, read in HSCAN batches (issue 14): at a million identities one HGETALL is a
   * single reply of gigabytes that Redis builds in memory and the client must take whole; a listing (the
   * gallery API's `GET /v1/identities`, key rotation) needs no atomic snapshot, so it takes bounded replies.
   */
  async list(): Promise<GalleryIdentity[]> {
    const all: GalleryIdentity[] = [];
    await this.snapshotStream((batch) => void all.push(...batch));
    // HSCAN may return an identity twice when the hash is rehashed during the scan: the later copy wins
    const byId = new Map(all.map((i) => [i.id, i]));
    return [...byId.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  async version(): Promise<number> {
    this.check();
    const v = await this.redis.get(this.keys.version).catch((e: unknown) => Promise.reject(storeError(e, 'version')));
    return v === null ? 0 : Number(v);
  }

  async snapshot(): Promise<GallerySnapshot> {
    this.check();
    let res: [Error | null, unknown][] | null;
    try {
      res = await this.redis.multi().get(this.keys.version).hgetall(this.keys.identities).get(this.keys.model).get(this.keys.imported).get(this.keys.epoch).get(this.keys.keyring).exec();
    } catch (e) {
      throw storeError(e, 'snapshot');
    }
    if (!res) throw storeError(new Error('transaction aborted'), 'snapshot');
    const [[e1, version], [e2, hash], [e3, model], [e4, imported], [e5, epoch], [e6, keyring]] = res as [
      [Error | null, string | null],
      [Error | null, Record<string, string>],
      [Error | null, string | null],
      [Error | null, string | null],
      [Error | null, string | null],
      [Error | null, string | null],
    ];
    if (e1 || e2 || e3 || e4 || e5 || e6) throw storeError(e1 ?? e2 ?? e3 ?? e4 ?? e5 ?? e6, 'snapshot');
    await this.syncKeyring(keyring);
    const decoded: GalleryIdentity[] = [];
    for (const [id, raw] of Object.entries(hash ?? {})) decoded.push(await this.decode(raw, id));
    const identities = decoded
      .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    return {
      version: version === null ? 0 : Number(version),
      identities,
      ...(model !== null ? { model } : {}),
      ...(imported !== null ? { imported: Number(imported) } : {}),
      ...(epoch !== null ? { epoch } : {}),
    };
  }

  /** HSCAN in batches: bounded replies and memory, however large the gallery (types.ts: not atomic). */
  async snapshotStream(onBatch: (identities: GalleryIdentity[]) => void, options: { batchSize?: number } = {}): Promise<GallerySnapshotHead> {
    this.check();
    const batchSize = options.batchSize ?? 1000;
    if (!(Number.isInteger(batchSize) && batchSize >= 1)) throw new FaceflowError('INVALID_ARGUMENT', `batchSize must be an integer >= 1, got ${batchSize}`);
    let res: [Error | null, unknown][] | null;
    try {
      res = await this.redis.multi().get(this.keys.version).get(this.keys.model).get(this.keys.imported).get(this.keys.epoch).get(this.keys.keyring).exec();
    } catch (e) {
      throw storeError(e, 'snapshot');
    }
    if (!res) throw storeError(new Error('transaction aborted'), 'snapshot');
    const failed = res.find(([e]) => e)?.[0];
    if (failed) throw storeError(failed, 'snapshot');
    const [version, model, imported, epoch, keyring] = res.map(([, v]) => v as string | null);
    await this.syncKeyring(keyring ?? null);
    let cursor = '0';
    do {
      const [next, flat] = await this.redis.hscan(this.keys.identities, cursor, 'COUNT', batchSize).catch((e: unknown) => Promise.reject(storeError(e, 'snapshot')));
      cursor = next;
      const batch: GalleryIdentity[] = [];
      for (let i = 0; i + 1 < flat.length; i += 2) batch.push(await this.decode(flat[i + 1]!, flat[i]!));
      if (batch.length > 0) onBatch(batch);
    } while (cursor !== '0');
    return {
      version: version === null || version === undefined ? 0 : Number(version),
      ...(model != null ? { model } : {}),
      ...(imported != null ? { imported: Number(imported) } : {}),
      ...(epoch != null ? { epoch } : {}),
    };
  }

  async subscribe(listener: GalleryListener): Promise<Unsubscribe> {
    this.check();
    this.listeners.add(listener);
    if (!this.subscriber) {
      const sub = this.redis.duplicate();
      this.subscriber = sub;
      sub.on('error', (e: Error) => this.logger.warn('redis subscriber connection error', { error: e.message }));
      sub.on('message', (channel: string, message: string) => {
        if (channel !== this.keys.channel) return;
        let change: GalleryChange;
        try {
          change = GalleryChangeSchema.decode(Buffer.from(message, 'utf8'));
        } catch (e) {
          this.logger.warn('ignoring a malformed gallery change notification', { channel, err: e });
          return;
        }
        notifyAll(this.listeners, change, (e) => this.logger.error('gallery listener failed', { err: e }));
      });
      this.subscribing = (async () => {
        await sub.subscribe(this.keys.channel);
      })();
    }
    try {
      await this.subscribing;
    } catch (e) {
      this.listeners.delete(listener);
      // forget the failed connection so that the next subscribe() tries again
      this.subscriber?.disconnect();
      this.subscriber = undefined;
      this.subscribing = undefined;
      throw storeError(e, 'subscribe');
    }
    return async () => {
      this.listeners.delete(listener);
    };
  }

  /**
   * What the gallery costs Redis (issue 14: sizing a million-person list): the server's used and peak memory
   * (`INFO memory`, every database) and the identities hash's own (`MEMORY USAGE`, Redis's sampled estimate).
   */
  async memory(): Promise<{ usedBytes: number; peakBytes: number; identitiesBytes: number }> {
    this.check();
    const [info, hash] = await Promise.all([this.redis.info('memory'), this.redis.memory('USAGE', this.keys.identities)]).catch((e: unknown) => Promise.reject(storeError(e, 'memory')));
    const field = (name: string): number => Number(new RegExp(`^${name}:(\\d+)`, 'm').exec(info)?.[1] ?? NaN);
    return { usedBytes: field('used_memory'), peakBytes: field('used_memory_peak'), identitiesBytes: Number(hash ?? 0) };
  }

  /** Deletes every key of this gallery (tests; what a Redis restarted without its data looks like). */
  async drop(): Promise<void> {
    this.check();
    // UNLINK: a million-identity hash is freed in the background instead of blocking Redis (issue 14)
    await this.redis.unlink(this.keys.version, this.keys.identities, this.keys.dim, this.keys.model, this.keys.imported, this.keys.epoch, this.keys.keyring).catch((e: unknown) => Promise.reject(storeError(e, 'drop')));
    // and the staging hashes of imports abandoned half-way (they would expire anyway)
    let cursor = '0';
    do {
      const [next, keys] = await this.redis.scan(cursor, 'MATCH', `${this.keys.identities}:import:*`, 'COUNT', 1000).catch((e: unknown) => Promise.reject(storeError(e, 'drop')));
      cursor = next;
      if (keys.length) await this.redis.unlink(...keys).catch((e: unknown) => Promise.reject(storeError(e, 'drop')));
    } while (cursor !== '0');
  }

  /** See GalleryStore.rotateKey: one script, refused (and built again) when the gallery changed meanwhile. */
  async rotateKey(o: KeyRotation): Promise<KeyRotationResult> {
    return (await this.rekey(o, false))!;
  }

  /** `sealOnly`: seal a plaintext gallery, and do nothing once another writer sealed it meanwhile. */
  private async rekey(o: KeyRotation, sealOnly: boolean): Promise<KeyRotationResult | undefined> {
    this.check();
    for (let attempt = 1; attempt <= 20; attempt++) {
      const snap = await this.snapshot(); // opens every record: a tampered one stops the rotation here
      const before = this.cipher;
      if (sealOnly && before) return undefined;
      const readKeyring = this.keyringRaw;
      const next = rotatedCipher(before, o);
      const all = !before || o.newDataKey === true;
      const pairs = all ? snap.identities.flatMap((i) => [i.id, next.seal(i)]) : [];
      let ok: number;
      try {
        ok = (await this.redis.eval(RESEAL_SCRIPT, 3, this.keys.version, this.keys.identities, this.keys.keyring, String(snap.version), readKeyring, JSON.stringify(next.keyring), all ? 'all' : 'keyring', ...pairs)) as number;
      } catch (e) {
        throw storeError(e, 'rotate key');
      }
      if (ok !== 1) continue; // changed meanwhile: read it again
      this.cipher = next;
      this.keyringRaw = JSON.stringify(next.keyring);
      return rotationResult(before, next, o, snap.identities.length);
    }
    throw new FaceflowError('TIMEOUT', `${this.where}: the gallery kept changing during the key rotation; try again`);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.listeners.clear();
    const sub = this.subscriber;
    this.subscriber = undefined;
    await Promise.all([sub?.quit().catch(() => sub.disconnect()), this.redis.quit().catch(() => this.redis.disconnect())]);
  }
}

/** One connection to Redis, pinged: a security failure is one TRANSPORT_SECURITY line, another STORE_UNAVAILABLE. */
async function connectRedis(options: Pick<RedisGalleryStoreOptions, 'url' | 'security' | 'connectTimeoutMs'>, logger: Logger): Promise<Redis> {
  const sec = options.security;
  const isTls = options.url.startsWith('rediss:');
  const redis = new Redis(options.url, {
    ...(sec?.username ? { username: sec.username } : {}),
    ...(sec?.password ? { password: sec.password.reveal() } : {}),
    ...(isTls ? { tls: { rejectUnauthorized: true, ...(sec?.ca ? { ca: [sec.ca.text] } : {}), ...(sec?.cert ? { cert: sec.cert.text } : {}), ...(sec?.key ? { key: sec.key.reveal() } : {}) } } : {}),
    lazyConnect: true,
    connectTimeout: options.connectTimeoutMs ?? 5_000,
    maxRetriesPerRequest: 2,
    retryStrategy: (times) => Math.min(times * 200, 2_000),
  });
  let lastError: Error | undefined;
  let opened = false;
  const where = { system: 'redis' as const, where: `Redis at ${redactUrl(options.url)}`, what: 'connect', security: sec, tls: isTls };
  redis.on('error', (e: Error) => {
    lastError = e;
    // at start-up a security failure is the one TRANSPORT_SECURITY line thrown below (issue 15)
    if (!opened && securityError(e, where)) return;
    logger.warn('redis connection error', { url: redactUrl(options.url), error: e.message });
  });
  try {
    await redis.connect();
    // ioredis reports a refused AUTH as an error event and carries on; a command then fails with NOAUTH
    await redis.ping();
    opened = true;
  } catch (e) {
    redis.disconnect();
    const sec2 = securityError(lastError, where) ?? securityError(e, where) ?? (await diagnoseTransport(lastError ?? e, { ...where, addresses: [hostPort(options.url)], tls: isTls }));
    if (sec2) throw sec2;
    const why = lastError?.message ?? (e as Error).message; // ioredis rejects with "Connection is closed."; the cause came as an event
    throw new FaceflowError('STORE_UNAVAILABLE', `cannot connect to redis at ${redactUrl(options.url)}: ${why}`, {
      cause: e,
      details: { url: redactUrl(options.url) },
    });
  }
  return redis;
}

/**
 * Follows a gallery's change notifications without opening the gallery (issue 15 item 3): what a process
 * needs that reacts to changes but never reads templates (alerts erases a deleted person's thumbnails). It
 * holds no key and reads no record. Pub/sub is fire-and-forget: a change published while the connection is
 * down is missed (ioredis resubscribes when it reconnects).
 */
export async function subscribeGalleryChanges(
  options: Pick<RedisGalleryStoreOptions, 'url' | 'security' | 'connectTimeoutMs' | 'keyPrefix' | 'logger'>,
  listener: GalleryListener,
): Promise<Unsubscribe> {
  const logger = options.logger ?? silentLogger;
  const channel = `${options.keyPrefix ?? DEFAULT_GALLERY_KEY_PREFIX}changes`;
  const sub = await connectRedis(options, logger);
  sub.on('message', (ch: string, message: string) => {
    if (ch !== channel) return;
    let change: GalleryChange;
    try {
      change = GalleryChangeSchema.decode(Buffer.from(message, 'utf8'));
    } catch (e) {
      logger.warn('ignoring a malformed gallery change notification', { channel, err: e });
      return;
    }
    notifyAll([listener], change, (e) => logger.error('gallery listener failed', { err: e }));
  });
  try {
    await sub.subscribe(channel);
  } catch (e) {
    sub.disconnect();
    throw storeError(e, 'subscribe');
  }
  return async () => {
    await sub.quit().catch(() => sub.disconnect());
  };
}

/** The URL without its password, for logs and errors. */
/** host:port of a redis:// URL (the TLS check of transport-security.ts). */
function hostPort(url: string): string {
  try {
    const u = new URL(url);
    return `${u.hostname}:${u.port || '6379'}`;
  } catch {
    return '';
  }
}

export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(unparseable url)';
  }
}
