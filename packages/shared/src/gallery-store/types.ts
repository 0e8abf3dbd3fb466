/**
 * The gallery: enrolled identities, each with several L2-normalised embeddings (one per enrolment photo).
 * A store has a version that grows by one with every change, and notifies listeners of each change
 * (GalleryChange). Matchers keep an in-memory copy: they load a snapshot (identities + the version it
 * reflects), then apply changes; a change whose version is not the next one means a notification was
 * missed, and the snapshot is reloaded.
 *
 * `replace` swaps the whole gallery at once (`faceflow gallery import`, a restore from a gallery file): the
 * version moves past both the store's and the imported gallery's, so it never goes back and every matcher
 * reloads; the store remembers that version (`imported`), which a matcher holding a gallery the store has
 * since lost takes as the sign that the store holds a consistent gallery again (issue 12).
 *
 * Implementations: MemoryGalleryStore (tests, one-process runs), FileGalleryStore (a JSON file; the
 * CLI's gallery), RedisGalleryStore (services: shared, with pub/sub notifications).
 */
import { FaceflowError } from '../errors.js';
import type { GalleryChange } from '../schemas/gallery-change.js';
import { EMBEDDING_NORM_TOLERANCE, l2norm, MAX_EMBEDDING_DIM } from '../schemas/validate.js';

export interface GalleryIdentity {
  id: string;
  embeddings: number[][];
  metadata: Record<string, string>;
  /** Last change, ms since the epoch. */
  updatedAt: number;
}

export interface GallerySnapshot {
  version: number;
  identities: GalleryIdentity[];
  /** The embedding model the gallery's vectors come from, when the store records one. */
  model?: string;
  /** The version the last `replace` (an import) produced, when the store's gallery descends from one. */
  imported?: number;
  /**
   * Where a store can lose its data (Redis): an id that stays the same while it keeps them, and differs once
   * it lost them and was written again, so that a reader can tell a lost store from a continued one whatever
   * the versions. Absent from stores that cannot lose their data (memory, file) and from an empty one.
   */
  epoch?: string;
}

/** A snapshot without its identities (what snapshotStream reports besides the batches). */
export type GallerySnapshotHead = Omit<GallerySnapshot, 'identities'>;

/** A whole gallery to put in place of a store's (a gallery file's content). */
export interface GalleryReplacement {
  identities: GalleryIdentity[];
  /** Recorded as the store's model (kept when undefined). */
  model?: string;
  /** The imported gallery's own version (its file's galleryVersion): the store's version moves past it. */
  version?: number;
}

export interface PutOptions {
  /** replace (default): the identity's embeddings become these; append: they are added to the existing ones. */
  mode?: 'replace' | 'append';
  /** Replaces the identity's metadata when given (kept otherwise). */
  metadata?: Record<string, string>;
}

export type GalleryListener = (change: GalleryChange) => void;
export type Unsubscribe = () => Promise<void>;

export interface GalleryStore {
  /** Enrolls (adds or updates) an identity; resolves with the change, whose version is the new gallery version. */
  put(id: string, embeddings: number[][], options?: PutOptions): Promise<GalleryChange>;
  /** Deletes an identity; null when it did not exist (the version does not move then). */
  delete(id: string): Promise<GalleryChange | null>;
  get(id: string): Promise<GalleryIdentity | undefined>;
  list(): Promise<GalleryIdentity[]>;
  version(): Promise<number>;
  /** All identities together with the version they reflect, read atomically. */
  snapshot(): Promise<GallerySnapshot>;
  /**
   * Optional (issue 14: a million identities are too many for one reply): the identities in batches of
   * about `batchSize`, and what a snapshot reports besides them. Not atomic: the version is the one read
   * before the first batch, and a change made while streaming may or may not show in the batches (an
   * identity may even come twice: the later one wins), so a reader that subscribed before streaming applies
   * every change above that version again (put: re-read the identity; delete: remove it) and reaches the
   * store's state.
   */
  snapshotStream?(onBatch: (identities: GalleryIdentity[]) => void, options?: { batchSize?: number }): Promise<GallerySnapshotHead>;
  /**
   * Replaces the whole gallery, atomically: afterwards it holds exactly `r.identities` (checked as by put),
   * at version max(current, r.version) + 1, recorded as `imported`; notifies one change of type "import".
   */
  replace(r: GalleryReplacement): Promise<GalleryChange>;
  /**
   * Optional (issue 14): `replace` fed in batches, for a gallery too large for one array or one command (a
   * million-person watch list). The same checks and the same result as `replace` (atomic: readers see the
   * old gallery until the last batch is in, then the new one whole, with one "import" change); a batch that
   * fails a check aborts the import and leaves the store's gallery as it was.
   */
  replaceStream?(batches: AsyncIterable<GalleryIdentity[]> | Iterable<GalleryIdentity[]>, r?: Omit<GalleryReplacement, 'identities'>): Promise<GalleryChange>;
  /** Calls `listener` for every change made through any instance sharing this store's backing storage
   *  (Memory/File: this instance only); resolves once notifications are flowing. */
  subscribe(listener: GalleryListener): Promise<Unsubscribe>;
  close(): Promise<void>;
  /**
   * Stores that keep templates at rest (file, Redis; issue 15): seals the gallery under `key` (the new
   * key-encryption key; the current one to rotate only the data key). Without `newDataKey` the data key is
   * re-wrapped (one small write, records untouched); with it every record is re-sealed under a new data key.
   * A plaintext gallery is sealed whole (a new data key). Afterwards only `key` opens the gallery.
   */
  rotateKey?(o: KeyRotation): Promise<KeyRotationResult>;
}

export interface KeyRotation {
  key: import('./gallery-crypto.js').GalleryKey;
  newDataKey?: boolean;
}

export interface KeyRotationResult {
  /** the key-encryption key and data key ids before (absent: the gallery was plaintext) and after */
  fromKey?: string;
  fromDataKey?: string;
  toKey: string;
  toDataKey: string;
  /** records sealed again (0 for a re-wrap) */
  resealed: number;
}

export const MAX_EMBEDDINGS_PER_IDENTITY = 1000;

export function checkIdentityId(id: unknown): string {
  // eslint-disable-next-line no-control-regex
  if (typeof id !== 'string' || id.length === 0 || id.length > 256 || /[\u0000-\u001f\u007f]/.test(id)) {
    throw new FaceflowError('INVALID_ARGUMENT', 'identity id must be 1..256 characters without control characters', {
      details: { field: 'id' },
    });
  }
  return id;
}

/** Checks embeddings for storage: 1..1000 vectors, all of one dimension, finite, L2-normalised. Returns the dimension. */
export function checkEmbeddings(id: string, embeddings: unknown, expectDim?: number): number {
  const bad = (field: string, problem: string): FaceflowError =>
    new FaceflowError('INVALID_ARGUMENT', `gallery: identity ${JSON.stringify(id)}: ${field} ${problem}`, { details: { identity: id, field } });
  if (!Array.isArray(embeddings) || embeddings.length === 0) throw bad('embeddings', 'must be a non-empty array');
  if (embeddings.length > MAX_EMBEDDINGS_PER_IDENTITY) throw bad('embeddings', `must hold at most ${MAX_EMBEDDINGS_PER_IDENTITY} vectors`);
  let dim = expectDim;
  embeddings.forEach((e: unknown, i) => {
    if (!Array.isArray(e) || e.length === 0 || e.length > MAX_EMBEDDING_DIM) throw bad(`embeddings[${i}]`, `must be an array of 1..${MAX_EMBEDDING_DIM} numbers`);
    for (const x of e) if (typeof x !== 'number' || !Number.isFinite(x)) throw bad(`embeddings[${i}]`, 'must hold finite numbers only');
    dim ??= e.length;
    if (e.length !== dim) throw bad(`embeddings[${i}]`, `has dimension ${e.length}, the gallery's is ${dim}`);
    const n = l2norm(e as number[]);
    if (Math.abs(n - 1) > EMBEDDING_NORM_TOLERANCE) throw bad(`embeddings[${i}]`, `must be L2-normalised (norm is ${n.toFixed(4)})`);
  });
  return dim!;
}

export function checkMetadata(metadata: unknown): Record<string, string> {
  if (metadata === undefined) return {};
  if (typeof metadata !== 'object' || metadata === null || Array.isArray(metadata)) {
    throw new FaceflowError('INVALID_ARGUMENT', 'gallery: metadata must be an object of strings', { details: { field: 'metadata' } });
  }
  for (const [k, v] of Object.entries(metadata)) {
    if (typeof v !== 'string') throw new FaceflowError('INVALID_ARGUMENT', `gallery: metadata.${k} must be a string`, { details: { field: `metadata.${k}` } });
  }
  return { ...(metadata as Record<string, string>) };
}

export function cloneIdentity(i: GalleryIdentity): GalleryIdentity {
  return { id: i.id, embeddings: i.embeddings.map((e) => [...e]), metadata: { ...i.metadata }, updatedAt: i.updatedAt };
}

/** Calls every listener; one that throws is reported to `onError` and does not stop the others. */
export function notifyAll(listeners: Iterable<GalleryListener>, change: GalleryChange, onError: (e: unknown) => void): void {
  for (const l of [...listeners]) {
    try {
      l(change);
    } catch (e) {
      onError(e);
    }
  }
}
