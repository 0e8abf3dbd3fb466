/**
 * The matcher's view of the gallery: the GalleryStore (Redis in the services, memory in `faceflow run`) is
 * the source of truth; this holds it in memory as an engine `Gallery` (its search index: exact, int8 or HNSW,
 * changed row by row, issue 14) and keeps it in
 * step with change notifications: a change whose version follows the one held is applied on its own (the
 * identity is re-read from the store); a gap (a missed notification, e.g. while Redis was down), an import
 * (the whole gallery replaced) or anything unexpected reloads a full snapshot. `refresh()` is also safe to
 * call on a timer as a backstop. A store that streams its snapshot (Redis: HSCAN batches, issue 14) fills a
 * new gallery batch by batch while the one held keeps serving; the changes made meanwhile queue behind the
 * load and are applied after it (a put re-reads its identity, a delete removes it), which reaches the
 * store's state whichever of them the batches already showed. The new gallery's background index build
 * (ivf lists, hnsw graph) waits until the last batch is in, so it is built once, for the whole gallery.
 *
 * Versions only grow, so a store whose version is below the one held has lost its gallery (Redis restarted
 * without persistence, or flushed), whatever it holds since: enrolments made into it start a new count from 1
 * and hold part of the gallery at best; so has a store whose epoch (GallerySnapshot.epoch) is not the one
 * the held gallery was loaded with, even where the new count has caught up with the version held. While a gallery is held, such a store does not replace it: the held
 * gallery stays in use, at its own version (what matches and the version gauge report), logged as an error
 * and shown by faceflow_gallery_store_lost, until the store holds a whole gallery again: an import
 * (`faceflow gallery import FILE`, GalleryStore.replace) marks the store's gallery as imported, and only a
 * store so marked is loaded again. Changes made to the lost store before that are not served (issue 12: the
 * first re-enrolment after Redis came back empty used to reload the store in full and drop every identity
 * not re-enrolled). To empty a gallery on purpose, delete its identities (the version moves on); do not drop
 * its keys.
 */
import { Gallery, type SearchIndexOptions } from '@faceflow/engine/match';
import { silentLogger, type GalleryChange, type GalleryIdentity, type GallerySnapshot, type GalleryStore, type Logger, type Metrics, type Unsubscribe } from '@faceflow/shared';

export interface GalleryCacheOptions {
  store: GalleryStore;
  /** Label of the embedding model (the engine Gallery records it). */
  model?: string;
  logger?: Logger;
  /** Called after each change was applied (tests). */
  onChange?: (version: number) => void;
  /** An identity is about to leave the held gallery (a delete notification): its embeddings, e.g. to erase the unknown clusters built from it (issue 15). */
  onDelete?: (identity: string, embeddings: Float32Array[]) => void;
  /** The gallery gauges (version, identities, store lost), set on every change rather than on a timer. */
  metrics?: Metrics;
  /** How the gallery is searched (issue 14: exact, int8 or hnsw, or auto by size). */
  search?: SearchIndexOptions;
  /** Identities per read when the store streams its snapshot (default: the store's). */
  batchSize?: number;
}

export class GalleryCache {
  private gallery: Gallery | undefined;
  private held = 0;
  private unsubscribe: Unsubscribe | undefined;
  private chain: Promise<void> = Promise.resolve();
  private readonly logger: Logger;
  private skipped = new Set<string>();
  /** The store lost the gallery held (its version went below it): serving the held one until an import. */
  private orphaned = false;
  /** The epoch of the store the held gallery came from (undefined: a store without epochs, or none yet). */
  private epoch: string | undefined;
  private readonly gauges: { version: (v: number) => void; size: (n: number) => void; lost: (n: number) => void } | undefined;

  constructor(private readonly o: GalleryCacheOptions) {
    this.logger = o.logger ?? silentLogger;
    const m = o.metrics;
    if (m) {
      const version = m.gauge({ name: 'gallery_version', help: 'Gallery version held in memory (the one every match reports)' });
      const size = m.gauge({ name: 'gallery_identities', help: 'Identities in the gallery held in memory' });
      const lost = m.gauge({ name: 'gallery_store_lost', help: '1 while the gallery store has lost the gallery held (serving the held one until `faceflow gallery import`)' });
      this.gauges = { version: (v) => version.set({}, v), size: (n) => size.set({}, n), lost: (n) => lost.set({}, n) };
    }
  }

  /** Reports the state held: gauges, then the onChange hook. */
  private changed(): void {
    this.gauges?.version(this.held);
    this.gauges?.size(this.size);
    this.gauges?.lost(this.orphaned ? 1 : 0);
    this.o.onChange?.(this.held);
  }

  /** Whether the store holds no continuation of the gallery held (see the file comment). */
  get storeLost(): boolean {
    return this.orphaned;
  }

  /** Subscribes to changes, then loads the snapshot (so no change falls between the two). */
  async start(): Promise<void> {
    this.unsubscribe = await this.o.store.subscribe((c) => this.enqueue(() => this.apply(c)));
    await this.enqueue(() => this.reload());
  }

  get version(): number {
    return this.held;
  }

  /** The gallery to search, or undefined while it is empty. */
  get current(): Gallery | undefined {
    return this.gallery && this.gallery.size > 0 ? this.gallery : undefined;
  }

  get size(): number {
    return this.gallery?.size ?? 0;
  }

  /** Reloads when the store's version moved past the one held (a backstop for missed notifications). */
  refresh(): Promise<void> {
    return this.enqueue(async () => {
      if ((await this.o.store.version()) !== this.held) await this.reload();
    });
  }

  private enqueue(fn: () => Promise<void>): Promise<void> {
    const run = this.chain.then(fn);
    this.chain = run.catch((e: unknown) => this.logger.warn('gallery refresh failed; keeping the gallery held', { err: e, version: this.held }));
    return run;
  }

  private build(identities: GalleryIdentity[]): Gallery | undefined {
    const first = identities.find((i) => i.embeddings[0]);
    if (!first) return undefined;
    const g = new Gallery(this.o.model ?? first.metadata.model ?? 'unknown', first.embeddings[0]!.length, { search: this.o.search });
    for (const i of identities) this.addTo(g, i);
    return g;
  }

  private addTo(g: Gallery, i: GalleryIdentity): void {
    try {
      g.add(i.id, i.embeddings.map((e) => Float32Array.from(e)));
      this.skipped.delete(i.id);
    } catch (e) {
      if (!this.skipped.has(i.id)) this.logger.warn('gallery identity skipped', { identity: i.id, err: e });
      this.skipped.add(i.id);
    }
  }

  /**
   * Reads the store's gallery: in batches where the store streams (Redis: a million identities never come
   * in one reply, and the gallery held keeps serving while the new one fills), else one snapshot.
   */
  private async read(): Promise<{ head: Omit<GallerySnapshot, 'identities'>; count: number; gallery: Gallery | undefined; batches: number; largestBatch: number }> {
    const store = this.o.store;
    if (!store.snapshotStream) {
      const snap = await store.snapshot();
      return { head: snap, count: snap.identities.length, gallery: this.build(snap.identities), batches: 1, largestBatch: snap.identities.length };
    }
    let g: Gallery | undefined;
    let resume: (() => void) | undefined;
    let batches = 0;
    let largestBatch = 0;
    try {
      const head = await store.snapshotStream((batch) => {
        batches++;
        largestBatch = Math.max(largestBatch, batch.length);
        for (const i of batch) {
          if (!i.embeddings[0]) continue;
          if (!g) {
            g = new Gallery(this.o.model ?? i.metadata.model ?? 'unknown', i.embeddings[0].length, { search: this.o.search });
            // the new gallery serves nothing until it is complete: its index (ivf, hnsw) is built once, on all of it
            resume = g.deferSearchBuild();
          }
          g.remove(i.id); // a streamed identity can come twice: the later one wins
          this.addTo(g, i);
        }
      }, { batchSize: this.o.batchSize });
      resume?.();
      return { head, count: g?.size ?? 0, gallery: g, batches, largestBatch };
    } catch (e) {
      (g as Gallery | undefined)?.close();
      throw e;
    }
  }

  private async reload(): Promise<void> {
    const started = Date.now();
    const { head: snap, count, gallery, batches, largestBatch } = await this.read();
    if (this.keepHeld(snap, count)) {
      gallery?.close();
      this.changed();
      return;
    }
    if (this.orphaned) this.logger.warn('the gallery store was restored by an import: reloaded', { version: snap.version, identities: count, heldVersion: this.held });
    this.orphaned = false;
    const previous = this.gallery;
    this.gallery = gallery;
    previous?.close(); // searches are synchronous: none is using it now; frees an HNSW graph's native memory
    this.held = snap.version;
    this.epoch = snap.epoch;
    // the replies it came in (issue 14: a streamed load is many bounded ones, never one giant reply)
    this.logger.info('gallery loaded', { version: snap.version, identities: this.gallery?.size ?? 0, ms: Date.now() - started, batches, largestBatch });
    this.changed();
  }

  /** True when `snap` must not replace the gallery held: the store lost it, and holds no import since. */
  private keepHeld(snap: Omit<GallerySnapshot, 'identities'>, storeIdentities: number): boolean {
    if (snap.imported !== undefined) return false; // a whole gallery, put there after any loss (a loss wipes the mark)
    const continued = snap.version >= this.held && (this.epoch === undefined || snap.epoch === this.epoch);
    if (!this.orphaned && (this.size === 0 || continued)) return false;
    if (!this.orphaned) {
      this.logger.error('the gallery store lost the gallery held (its version went below the one held, or its epoch changed): keeping the one held in use until the store is restored with `faceflow gallery import FILE`', {
        heldVersion: this.held,
        identities: this.size,
        storeVersion: snap.version,
        storeIdentities,
      });
      this.orphaned = true;
    }
    return true;
  }

  private async apply(c: GalleryChange): Promise<void> {
    if (c.type === 'import' || this.orphaned) {
      // while the store is lost, only a snapshot that carries an import mark is taken (reload decides)
      if (this.orphaned && c.type !== 'import') this.logger.warn('gallery change not served: the store lost the gallery held; restore it with `faceflow gallery import FILE`', { change: c.type, identity: c.identity, storeVersion: c.version, heldVersion: this.held });
      await this.reload();
      return;
    }
    if (c.epoch !== undefined && this.epoch !== undefined && c.epoch !== this.epoch) {
      await this.reload(); // another epoch: the store lost its data (reload keeps the held gallery)
      return;
    }
    if (c.version <= this.held) return; // already reflected (the snapshot came after it), or from a store that lost the gallery (refresh finds out)
    if (c.version !== this.held + 1 || !this.gallery) {
      await this.reload();
      return;
    }
    if (c.type === 'delete') {
      if (this.gallery.has(c.identity)) this.o.onDelete?.(c.identity, this.gallery.embeddingsOf(c.identity));
      this.gallery.remove(c.identity);
    } else {
      const identity = await this.o.store.get(c.identity);
      if (!identity || identity.embeddings[0]?.length !== this.gallery.dim) {
        await this.reload();
        return;
      }
      this.gallery.remove(c.identity);
      this.addTo(this.gallery, identity);
    }
    this.held = c.version;
    this.epoch ??= c.epoch; // the first change of a store that had no epoch yet
    this.changed();
  }

  async close(): Promise<void> {
    await this.unsubscribe?.().catch(() => undefined);
    await this.chain;
    this.gallery?.close();
  }
}
