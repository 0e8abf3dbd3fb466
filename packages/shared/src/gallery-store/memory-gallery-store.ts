import { FaceflowError } from '../errors.js';
import { silentLogger, type Logger } from '../observability.js';
import type { GalleryChange } from '../schemas/gallery-change.js';
import {
  checkEmbeddings,
  checkIdentityId,
  checkMetadata,
  cloneIdentity,
  notifyAll,
  type GalleryIdentity,
  type GalleryListener,
  type GalleryReplacement,
  type GallerySnapshot,
  type GalleryStore,
  type PutOptions,
  type Unsubscribe,
} from './types.js';

export interface GalleryState {
  version: number;
  identities: Map<string, GalleryIdentity>;
  model?: string;
  /** see GallerySnapshot.imported */
  imported?: number;
}

/** The state with one more change: the version moves on, model and import mark are kept. */
function next(s: GalleryState, identities: Map<string, GalleryIdentity>): GalleryState {
  return { ...s, version: s.version + 1, identities };
}

/**
 * A gallery in memory. Changes are serialised (one at a time, in call order); `persist` is the hook the
 * FileGalleryStore uses to write the next state before it becomes visible.
 */
/** Checks a replacement as put checks each identity (ids, one dimension, no duplicates); the identities, cloned (a missing updatedAt: now). */
export function checkReplacement(r: GalleryReplacement): Map<string, GalleryIdentity> {
  if (!Array.isArray(r.identities)) throw new FaceflowError('INVALID_ARGUMENT', 'gallery: identities must be an array', { details: { field: 'identities' } });
  checkReplacementVersion(r.version);
  const out = new Map<string, GalleryIdentity>();
  const checker = replacementChecker();
  for (const i of r.identities) out.set(i.id, checker.check(i));
  return out;
}

export function checkReplacementVersion(version: number | undefined): void {
  if (version !== undefined && (!Number.isSafeInteger(version) || version < 0)) {
    throw new FaceflowError('INVALID_ARGUMENT', 'gallery: the imported version must be an integer >= 0', { details: { field: 'version' } });
  }
}

/**
 * The checks of a replacement one identity at a time (what a streamed import needs): id, no duplicates, one
 * dimension across all; each identity cloned (a missing updatedAt: now). `dim` is the dimension seen so far.
 */
export function replacementChecker(): { check(i: GalleryIdentity): GalleryIdentity; readonly dim: number | undefined; readonly count: number } {
  const seen = new Set<string>();
  const now = Date.now();
  let dim: number | undefined;
  return {
    check(i: GalleryIdentity): GalleryIdentity {
      const id = checkIdentityId(i?.id);
      if (seen.has(id)) throw new FaceflowError('INVALID_ARGUMENT', `gallery: identity ${JSON.stringify(id)} appears twice`, { details: { identity: id } });
      dim = checkEmbeddings(id, i.embeddings, dim);
      seen.add(id);
      return cloneIdentity({ ...i, metadata: checkMetadata(i.metadata), updatedAt: i.updatedAt || now });
    },
    get dim() {
      return dim;
    },
    get count() {
      return seen.size;
    },
  };
}

export class MemoryGalleryStore implements GalleryStore {
  protected state: GalleryState;
  private readonly listeners = new Set<GalleryListener>();
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;
  protected readonly logger: Logger;

  constructor(options: { logger?: Logger; initial?: GallerySnapshot } = {}) {
    this.logger = options.logger ?? silentLogger;
    const initial = options.initial;
    this.state = {
      version: initial?.version ?? 0,
      identities: new Map((initial?.identities ?? []).map((i) => [i.id, cloneIdentity(i)])),
      ...(initial?.model !== undefined ? { model: initial.model } : {}),
      ...(initial?.imported !== undefined ? { imported: initial.imported } : {}),
    };
  }

  /** Writes `next` somewhere durable before it is made visible (no-op in memory). */
  protected async persist(_next: GalleryState): Promise<void> {}

  private dim(except?: string): number | undefined {
    for (const [id, i] of this.state.identities) if (id !== except && i.embeddings[0]) return i.embeddings[0].length;
    return undefined;
  }

  /** Runs `fn` in turn with the changes (nothing else changes the state meanwhile). */
  protected serially<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(async () => {
      if (this.closed) throw new FaceflowError('STORE_UNAVAILABLE', 'gallery store is closed', { retriable: false });
      return fn();
    });
    this.queue = run.catch(() => undefined);
    return run;
  }

  private mutate<T>(fn: () => { next: GalleryState; change: GalleryChange } | null): Promise<GalleryChange | null> {
    const run = this.queue.then(async () => {
      if (this.closed) throw new FaceflowError('STORE_UNAVAILABLE', 'gallery store is closed', { retriable: false });
      const r = fn();
      if (!r) return null;
      await this.persist(r.next);
      this.state = r.next;
      notifyAll(this.listeners, r.change, (e) => this.logger.error('gallery listener failed', { err: e }));
      return r.change;
    });
    this.queue = run.catch(() => undefined);
    return run;
  }

  async put(id: string, embeddings: number[][], options: PutOptions = {}): Promise<GalleryChange> {
    checkIdentityId(id);
    const metadata = options.metadata === undefined ? undefined : checkMetadata(options.metadata);
    const change = await this.mutate(() => {
      const existing = this.state.identities.get(id);
      const append = options.mode === 'append' && existing;
      // with a single identity being replaced, its own old dimension does not bind the new one
      checkEmbeddings(id, embeddings, this.dim(append ? undefined : id));
      const now = Date.now();
      const identity: GalleryIdentity = {
        id,
        embeddings: [...(append ? existing.embeddings : []), ...embeddings.map((e) => [...e])],
        metadata: metadata ?? existing?.metadata ?? {},
        updatedAt: now,
      };
      checkEmbeddings(id, identity.embeddings); // the append limit
      const identities = new Map(this.state.identities);
      identities.set(id, identity);
      const n = next(this.state, identities);
      return { next: n, change: { type: 'enroll', identity: id, version: n.version, ts: now } };
    });
    return change!;
  }

  async delete(id: string): Promise<GalleryChange | null> {
    checkIdentityId(id);
    return this.mutate(() => {
      if (!this.state.identities.has(id)) return null;
      const identities = new Map(this.state.identities);
      identities.delete(id);
      const n = next(this.state, identities);
      return { next: n, change: { type: 'delete', identity: id, version: n.version, ts: Date.now() } };
    });
  }

  async replace(r: GalleryReplacement): Promise<GalleryChange> {
    const identities = checkReplacement(r);
    const change = await this.mutate(() => {
      const now = Date.now();
      const version = Math.max(this.state.version, r.version ?? 0) + 1;
      const model = r.model ?? this.state.model;
      return {
        next: { version, identities, imported: version, ...(model !== undefined ? { model } : {}) },
        change: { type: 'import', identity: '', version, ts: now },
      };
    });
    return change!;
  }

  async get(id: string): Promise<GalleryIdentity | undefined> {
    const i = this.state.identities.get(id);
    return i ? cloneIdentity(i) : undefined;
  }

  async list(): Promise<GalleryIdentity[]> {
    return [...this.state.identities.values()].map(cloneIdentity);
  }

  async version(): Promise<number> {
    return this.state.version;
  }

  async snapshot(): Promise<GallerySnapshot> {
    const s = this.state;
    return {
      version: s.version,
      identities: [...s.identities.values()].map(cloneIdentity),
      ...(s.model !== undefined ? { model: s.model } : {}),
      ...(s.imported !== undefined ? { imported: s.imported } : {}),
    };
  }

  async subscribe(listener: GalleryListener): Promise<Unsubscribe> {
    this.listeners.add(listener);
    return async () => {
      this.listeners.delete(listener);
    };
  }

  async close(): Promise<void> {
    await this.queue;
    this.closed = true;
    this.listeners.clear();
  }
}
