/**
 * EnginePool: the same run() as FaceEngine, spread over worker threads, one TF.js runtime each. The
 * WebAssembly backend runs one thread per runtime in Node, so this is how a CPU host uses every core.
 * Work goes to the worker with the fewest images in flight.
 */
import { Worker } from 'node:worker_threads';
import os from 'node:os';
import { existsSync } from 'node:fs';
import { FaceflowError, type ErrorCode } from '@faceflow/shared';
import type { EngineConfig, EmbedderInfo, EngineModels, DetectedFace, RunOptions } from './engine.js';
import type { RgbImage } from '../image/geometry.js';
import type { RuntimeInfo } from '../runtime/tf.js';

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
  load: number;
  worker: Slot;
}
interface Slot {
  worker: Worker;
  inflight: number;
}

function workerUrl(): URL {
  const here = import.meta.url;
  // From sources (vitest, tsx) the worker still runs the built file: loader hooks do not reach worker
  // threads reliably on Node 20. `npm test` builds first.
  const url = here.endsWith('.ts') ? new URL('../../dist/recognize/pool-worker.js', here) : new URL('./pool-worker.js', here);
  if (!existsSync(url)) throw new FaceflowError('INTERNAL', `engine worker ${url.pathname} is missing: run \`npm run build\` first`);
  return url;
}

export class EnginePool {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private closed = false;

  private constructor(
    private readonly slots: Slot[],
    readonly runtime: RuntimeInfo,
    readonly embedderInfo: EmbedderInfo,
    /** what each worker's engine runs (FaceEngine.models) */
    readonly models: EngineModels,
  ) {}

  /** Starts `workers` threads (default: the number of CPU cores) and waits until every engine loaded. */
  static async start(config: EngineConfig = {}, workers = os.availableParallelism()): Promise<EnginePool> {
    if (!Number.isInteger(workers) || workers < 1 || workers > 256) {
      throw new FaceflowError('INVALID_CONFIG', `workers must be an integer in [1, 256], got ${workers}`);
    }
    const url = workerUrl();
    const slots: Slot[] = [];
    const readies: Array<Promise<{ runtime: RuntimeInfo; embedder: EmbedderInfo; models: EngineModels }>> = [];
    for (let i = 0; i < workers; i++) {
      const worker = new Worker(url, { workerData: config });
      slots.push({ worker, inflight: 0 });
      readies.push(
        new Promise((resolve, reject) => {
          worker.once('message', (m: { type: string; runtime?: RuntimeInfo; embedder?: EmbedderInfo; models?: EngineModels; error?: { code: ErrorCode; message: string } }) => {
            if (m.error) reject(new FaceflowError(m.error.code, m.error.message));
            else resolve({ runtime: m.runtime!, embedder: m.embedder!, models: m.models! });
          });
          worker.once('error', (e) => reject(new FaceflowError('MODEL_LOAD', `engine worker failed to start: ${e.message}`, { cause: e })));
          // a worker gone before it answered would otherwise leave start() waiting for ever
          worker.once('exit', (code) => reject(new FaceflowError('MODEL_LOAD', `engine worker exited with code ${code} before its engine loaded`)));
        }),
      );
    }
    // Every load settles before any worker is terminated: a worker terminated while ONNX Runtime is still
    // creating a session in it (its native async work in flight) aborts the whole process from the addon
    // ("terminate called after throwing an instance of 'Napi::Error'", exit 134), the crash CI met on
    // `encode --workers 2 --embedder no-such-model` when one worker failed before the other finished.
    const settled = await Promise.allSettled(readies);
    const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) {
      await Promise.all(slots.map((s) => s.worker.terminate()));
      throw failed.reason;
    }
    const first = (settled[0] as PromiseFulfilledResult<{ runtime: RuntimeInfo; embedder: EmbedderInfo; models: EngineModels }>).value;
    const pool = new EnginePool(slots, first.runtime, first.embedder, first.models);
    for (const slot of slots) {
      slot.worker.on('message', (m: { type: string; id: number; result?: unknown; error?: { code: ErrorCode; message: string } }) => pool.onMessage(m));
      slot.worker.on('error', (e) => pool.failWorker(slot, e));
      slot.worker.on('exit', (code) => {
        if (!pool.closed) pool.failWorker(slot, new Error(`engine worker exited with code ${code}`));
      });
    }
    return pool;
  }

  get size(): number {
    return this.slots.length;
  }

  private onMessage(m: { type: string; id: number; result?: unknown; error?: { code: ErrorCode; message: string } }): void {
    if (m.type !== 'result') return;
    const p = this.pending.get(m.id);
    if (!p) return;
    this.pending.delete(m.id);
    p.worker.inflight -= p.load;
    if (m.error) p.reject(new FaceflowError(m.error.code, m.error.message));
    else p.resolve(m.result);
  }

  private failWorker(slot: Slot, e: Error): void {
    for (const [id, p] of this.pending) {
      if (p.worker !== slot) continue;
      this.pending.delete(id);
      p.reject(new FaceflowError('INTERNAL', `engine worker failed: ${e.message}`, { cause: e }));
    }
    slot.inflight = Number.POSITIVE_INFINITY; // never pick it again
  }

  private call<T>(op: 'run' | 'embedChips', payload: Record<string, unknown>, load: number, to?: Slot): Promise<T> {
    if (this.closed) return Promise.reject(new FaceflowError('INTERNAL', 'engine pool is closed'));
    const slot = to ?? this.slots.reduce((a, b) => (b.inflight < a.inflight ? b : a));
    if (!Number.isFinite(slot.inflight)) return Promise.reject(new FaceflowError('BACKEND_UNAVAILABLE', 'no engine worker is alive'));
    const id = this.nextId++;
    slot.inflight += load;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject, load, worker: slot });
      slot.worker.postMessage({ id, op, ...payload });
    });
  }

  /**
   * Like FaceEngine.run. The images are shared out among the workers in one chunk per worker, balanced by
   * weight (a full detection weighs 4, a detection near known faces 1; see RunOptions.regions), so that
   * each worker runs its images as one batch: on wasm a model call has a fixed cost of ~10 ms, which
   * batching across frames pays once.
   */
  async run(images: RgbImage[], options: RunOptions = {}, placement: { split?: boolean } = {}): Promise<DetectedFace[][]> {
    const live = this.slots.filter((s) => Number.isFinite(s.inflight));
    if (live.length === 0) throw new FaceflowError('BACKEND_UNAVAILABLE', 'no engine worker is alive');
    const weight = (i: number): number => (options.regions?.[i] ? 1 : 4);
    // the least loaded workers first: a batch of one image goes to the idlest worker, not the first;
    // `split: false` keeps the whole batch on that one worker (slow full detections, so that they never
    // occupy every worker at once)
    const byLoad = [...live].sort((a, b) => a.inflight - b.inflight);
    const n = placement.split === false ? 1 : Math.max(1, Math.min(live.length, images.length));
    const chunks = byLoad.slice(0, n).map((slot) => ({ slot, load: slot.inflight, items: [] as number[] }));
    const order = images.map((_, i) => i).sort((a, b) => weight(b) - weight(a));
    for (const i of order) {
      const c = chunks.reduce((a, b) => (b.load < a.load ? b : a));
      c.items.push(i);
      c.load += weight(i);
    }
    const out = new Array<DetectedFace[]>(images.length);
    await Promise.all(
      chunks
        .filter((c) => c.items.length > 0)
        .map(async (c) => {
          c.items.sort((a, b) => a - b);
          const own: RunOptions = { ...options };
          if (options.regions) own.regions = c.items.map((i) => options.regions![i]);
          if (options.trackOnlyNear) own.trackOnlyNear = c.items.map((i) => options.trackOnlyNear![i]);
          const load = c.items.reduce((a, i) => a + weight(i), 0);
          const faces = await this.call<DetectedFace[][]>('run', { images: c.items.map((i) => images[i]!), options: own }, load, c.slot);
          c.items.forEach((i, k) => (out[i] = faces[k]!));
        }),
    );
    return out;
  }

  /**
   * Like FaceEngine.embedChips. By default the chips are split into one batch per worker; with
   * `split: false` the whole call goes to one worker as one batch (callers that batch themselves).
   */
  async embedChips(chips: Uint8Array[], options: { split?: boolean } = {}): Promise<Float32Array[]> {
    if (options.split === false) return this.call<Float32Array[]>('embedChips', { chips }, chips.length);
    const per = Math.ceil(chips.length / this.slots.length) || 1;
    const batches: Uint8Array[][] = [];
    for (let i = 0; i < chips.length; i += per) batches.push(chips.slice(i, i + per));
    const parts = await Promise.all(batches.map((b) => this.call<Float32Array[]>('embedChips', { chips: b }, b.length)));
    return parts.flat();
  }

  /** Two-phase close: stop taking work, let in-flight calls finish within `graceMs`, then terminate. */
  async close(graceMs = 5000): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const deadline = Date.now() + graceMs;
    while (this.pending.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    for (const [id, p] of this.pending) {
      this.pending.delete(id);
      p.reject(new FaceflowError('TIMEOUT', 'engine pool closed before the call finished'));
    }
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
  }
}
