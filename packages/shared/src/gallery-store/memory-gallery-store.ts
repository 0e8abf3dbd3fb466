import { FaceflowError } from '../errors.js';
import { silentLogger, type Logger } from '../logger.js';
import type { GalleryChange } from '../schemas/gallery-change.js';
import {
  checkEmbeddings,
  checkIdentityId,
  checkMetadata,
  cloneIdentity,
  notifyAll,
  type GalleryIdentity,
  type GalleryListener,
  type GallerySnapshot,
  type GalleryStore,
  type PutOptions,
  type Unsubscribe,
} from './types.js';

export interface GalleryState {
  version: number;
  identities: Map<string, GalleryIdentity>;
}

/**
 * A gallery in memory. Changes are serialised (one at a time, in call order); `persist` is the hook the
 * FileGalleryStore uses to write the next state before it becomes visible.
 */
export class MemoryGalleryStore implements GalleryStore {
  protected state: GalleryState;
  private readonly listeners = new Set<GalleryListener>();
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;
  protected readonly logger: Logger;

  constructor(options: { logger?: Logger; initial?: GallerySnapshot } = {}) {
    this.logger = options.logger ?? silentLogger;
    this.state = {
      version: options.initial?.version ?? 0,
      identities: new Map((options.initial?.identities ?? []).map((i) => [i.id, cloneIdentity(i)])),
    };
  }

  /** Writes `next` somewhere durable before it is made visible (no-op in memory). */
  protected async persist(_next: GalleryState): Promise<void> {}

  private dim(except?: string): number | undefined {
    for (const [id, i] of this.state.identities) if (id !== except && i.embeddings[0]) return i.embeddings[0].length;
    return undefined;
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
      const version = this.state.version + 1;
      return { next: { version, identities }, change: { type: 'enroll', identity: id, version, ts: now } };
    });
    return change!;
  }

  async delete(id: string): Promise<GalleryChange | null> {
    checkIdentityId(id);
    return this.mutate(() => {
      if (!this.state.identities.has(id)) return null;
      const identities = new Map(this.state.identities);
      identities.delete(id);
      const version = this.state.version + 1;
      return { next: { version, identities }, change: { type: 'delete', identity: id, version, ts: Date.now() } };
    });
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
    return { version: s.version, identities: [...s.identities.values()].map(cloneIdentity) };
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
