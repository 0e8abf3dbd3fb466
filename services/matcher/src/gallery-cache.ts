/**
 * The matcher's view of the gallery: the GalleryStore (Redis in the services, memory in `faceflow run`) is
 * the source of truth; this holds it in memory as an engine `Gallery` (vectorised search) and keeps it in
 * step with change notifications: a change whose version follows the one held is applied on its own (the
 * identity is re-read from the store); a gap (a missed notification, e.g. while Redis was down) or anything
 * unexpected reloads a full snapshot. `refresh()` is also safe to call on a timer as a backstop.
 *
 * A store that comes back with no gallery at all (version 0, no identities: Redis restarted without
 * persistence, or was flushed) while a gallery is held does not empty the matcher: the held gallery stays in
 * use (logged as an error) until the store is rebuilt from the source of truth; the first change after that
 * reloads the store in full (so a rebuild should be quick: a half-rebuilt store is what that reload sees).
 * To empty a gallery on purpose, delete its identities (the version moves on); do not drop its keys.
 */
import { Gallery } from '@faceflow/engine';
import { silentLogger, type GalleryChange, type GalleryIdentity, type GalleryStore, type Logger, type Unsubscribe } from '@faceflow/shared';

export interface GalleryCacheOptions {
  store: GalleryStore;
  /** Label of the embedding model (the engine Gallery records it). */
  model?: string;
  logger?: Logger;
  /** Called after each change was applied (tests, metrics). */
  onChange?: (version: number) => void;
}

export class GalleryCache {
  private gallery: Gallery | undefined;
  private held = 0;
  private unsubscribe: Unsubscribe | undefined;
  private chain: Promise<void> = Promise.resolve();
  private readonly logger: Logger;
  private skipped = new Set<string>();
  /** The store lost its gallery (version 0) while one was held: serving the held one until it is rebuilt. */
  private orphaned = false;

  constructor(private readonly o: GalleryCacheOptions) {
    this.logger = o.logger ?? silentLogger;
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
    const g = new Gallery(this.o.model ?? first.metadata.model ?? 'unknown', first.embeddings[0]!.length);
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

  private async reload(): Promise<void> {
    const snap = await this.o.store.snapshot();
    if (snap.version === 0 && snap.identities.length === 0 && this.size > 0) {
      if (!this.orphaned) {
        this.logger.error('the gallery store has no gallery (version 0): keeping the one held until the store is rebuilt', { heldVersion: this.held, identities: this.size });
      }
      this.orphaned = true;
      this.held = 0;
      this.o.onChange?.(this.held);
      return;
    }
    if (this.orphaned) this.logger.warn('the gallery store was rebuilt: reloaded', { version: snap.version, identities: snap.identities.length });
    this.orphaned = false;
    this.gallery = this.build(snap.identities);
    this.held = snap.version;
    this.logger.info('gallery loaded', { version: snap.version, identities: this.gallery?.size ?? 0 });
    this.o.onChange?.(this.held);
  }

  private async apply(c: GalleryChange): Promise<void> {
    if (c.version <= this.held) return; // already reflected (the snapshot came after it)
    if (c.version !== this.held + 1 || !this.gallery || this.orphaned) {
      await this.reload();
      return;
    }
    if (c.type === 'delete') {
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
    this.o.onChange?.(this.held);
  }

  async close(): Promise<void> {
    await this.unsubscribe?.().catch(() => undefined);
    await this.chain;
  }
}
