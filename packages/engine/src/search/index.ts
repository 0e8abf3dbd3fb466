/**
 * The gallery's search index (issue 14): the rows (one per enrolled embedding) sit in one contiguous,
 * row-major Float32Array that grows by doubling and is kept dense by swap-removal, so an enrolment or a
 * deletion changes a row or two, never rebuilds the whole. Four ways to find the nearest identities, behind
 * one contract (`nearest`: the k nearest identities, each at the distance of its closest embedding):
 *
 * - `exact`: every row scored in float; in native SIMD code (usearch's exact search) when the package loads,
 *   else a JS loop. The reference the others are measured against.
 * - `int8`: every row scored on an int8 copy (a quarter of the memory read per query), then the best
 *   candidates re-scored in float, so the distances reported are the exact ones.
 * - `hnsw`: an HNSW graph (usearch, int8 vectors) finds the candidates, re-scored in float the same way.
 *   The graph is built in the background in short time slices; until it has caught up, queries use `int8`.
 * - `ivf`: an inverted file (ivf.ts): a k-means coarse quantiser trained on a sample, the int8 rows of the
 *   `nprobe` nearest lists scanned, the best re-scored in float. Built in background slices like the graph
 *   (int8 meanwhile), at a small part of its cost; an add is one assignment, a delete a swap in one list.
 *
 * `auto` picks exact below `approxRows` rows and the `approx` method from there. Embeddings are L2-normalised
 * (the gallery stores check it), so |q - e|^2 = 2 - 2 q.e and the nearest row is the one with the largest dot.
 */
import { createRequire } from 'node:module';
import { FaceflowError } from '@faceflow/shared';
import { IvfLists } from './ivf.js';
import { dense } from './native.js';
import { decisionOf, type DecisionRule } from '../match/decide.js';

type Usearch = typeof import('usearch');
type UsearchIndex = InstanceType<Usearch['Index']>;

let usearchModule: Usearch | null | undefined;
/** usearch ships prebuilt binaries (linux/darwin/win, x64/arm64); where none loads, the JS scan serves. */
export function loadUsearch(): Usearch | null {
  if (usearchModule !== undefined) return usearchModule;
  try {
    usearchModule = createRequire(import.meta.url)('usearch') as Usearch;
  } catch {
    usearchModule = null;
  }
  return usearchModule;
}

export type SearchMethod = 'exact' | 'int8' | 'hnsw' | 'ivf';

const METHODS: readonly SearchMethod[] = ['exact', 'int8', 'hnsw', 'ivf'];

export interface SearchIndexOptions {
  /** `auto` (default): exact below `approxRows` rows, `approx` from there */
  method?: SearchMethod | 'auto';
  /** rows from which `auto` leaves the exact scan (default 50,000) */
  approxRows?: number;
  /** what `auto` uses at and above `approxRows` (default int8) */
  approx?: Exclude<SearchMethod, 'exact'>;
  /** candidate rows re-scored in float by int8 and hnsw (default 64; raised to cover k identities) */
  rerank?: number;
  /** HNSW graph degree (default 16), candidate list while adding (default 128) and searching (default 512) */
  connectivity?: number;
  expansionAdd?: number;
  expansionSearch?: number;
  /** longest time slice (ms) a background build (HNSW graph, IVF lists) takes before yielding (default 20) */
  buildSliceMs?: number;
  /** IVF: lists (centroids) of the coarse quantiser (default: about the square root of the rows, 16-4096) */
  lists?: number;
  /** IVF: lists scanned per query (default: a sixteenth of the lists, at least 8); four times as many when the decision is in doubt */
  nprobe?: number;
  /**
   * IVF: how much nearer than the rows it found a row it missed may lie (L2 distance, default 0.03). Where
   * identify's decision would change if the nearest or second identity were this much nearer, the decision is
   * in doubt, and the search widens (see nearest).
   */
  decisionSlack?: number;
  /** IVF: rows sampled to train the quantiser (default 64 per list, at least 16,384) and k-means passes (default 8) */
  trainRows?: number;
  trainIterations?: number;
}

/**
 * IVF lists for `rows` rows: a power of two near sqrt(rows)/4, so a list holds about 16 times as many rows
 * as there are lists: each list costs one native call, whose fixed cost would dominate short lists.
 */
export function defaultIvfLists(rows: number): number {
  return Math.min(4096, Math.max(16, 2 ** Math.round(Math.log2(Math.sqrt(Math.max(1, rows)) / 4))));
}

/** Lists probed first by default: a sixteenth of them, at least 8 (fewer disagreed with exact search in bench:search). */
export function defaultNprobe(lists: number): number {
  return Math.min(lists, Math.max(8, Math.round(lists / 16)));
}

/** Counts of how IVF queries with a decision rule ended (issue 14: how often the search had to widen). */
export interface IvfStats {
  queries: number;
  /** decisions in doubt after the first probe, probed again with four (then eight) times the lists */
  widened: number;
  /** decisions that kept changing when widened: answered by the full int8 scan */
  scanned: number;
}

export interface OwnerDistance {
  owner: number;
  distance: number;
}

/** int8 quantisation scale: components of a unit vector in 128-d rarely exceed 0.4; larger ones clip. */
const Q_SCALE = 300;
const JS_SCAN_MAX_ROWS = 512;

function quantise(src: Float32Array, dst: Int8Array, off: number): void {
  for (let j = 0; j < src.length; j++) {
    const v = Math.round(src[j]! * Q_SCALE);
    dst[off + j] = v > 127 ? 127 : v < -127 ? -127 : v;
  }
}

export function checkQuery(query: Float32Array, dim: number): void {
  if (!(query instanceof Float32Array) && !Array.isArray(query)) throw new FaceflowError('INVALID_ARGUMENT', `query must be a Float32Array of ${dim} numbers`);
  if (query.length !== dim) throw new FaceflowError('INVALID_ARGUMENT', `query has ${query.length} values, the gallery wants ${dim}: use embeddings of the gallery's model`);
  for (let j = 0; j < dim; j++) {
    if (!Number.isFinite(query[j]!)) throw new FaceflowError('INVALID_ARGUMENT', `query holds a non-finite value (${query[j]}) at ${j}: pass a finite, L2-normalised embedding`);
  }
}

export class SearchIndex {
  private f32: Float32Array;
  private i8: Int8Array | undefined;
  private rowOwner: Int32Array;
  private ownerRows: number[][] = [];
  private freeOwners: number[] = [];
  private n = 0;
  /** an upper bound of the rows of one owner (how many rows k identities can need) */
  private maxPerOwner = 1;
  private readonly method: SearchIndexOptions['method'];
  private readonly approxRows: number;
  private readonly approx: Exclude<SearchMethod, 'exact'>;
  private readonly rerank: number;
  private hnsw: UsearchIndex | undefined;
  /** rows [0, hnswRows) are in the graph, keyed by row number */
  private hnswRows = 0;
  private building: NodeJS.Immediate | undefined;
  private ivf: IvfLists | undefined;
  /** rows [0, ivfRows) are in the IVF lists */
  private ivfRows = 0;
  /** the quantiser being trained (a generator run in background slices) */
  private ivfTraining: Generator<void, IvfLists> | undefined;
  private readonly nprobe: number | undefined;
  private readonly slack: number;
  readonly ivfStats: IvfStats = { queries: 0, widened: 0, scanned: 0 };
  private closed = false;
  /** a bulk load is filling the index: no background build until it ends (deferBuild) */
  private deferred = false;

  constructor(
    readonly dim: number,
    private readonly o: SearchIndexOptions = {},
  ) {
    const method = o.method ?? 'auto';
    if (method !== 'auto' && !METHODS.includes(method)) throw new FaceflowError('INVALID_ARGUMENT', `search method must be auto, ${METHODS.join(', ')}, got ${String(method)}`);
    this.method = method;
    this.approxRows = o.approxRows ?? 50_000;
    this.approx = o.approx ?? 'int8';
    if (this.approx === ('exact' as string) || !METHODS.includes(this.approx)) throw new FaceflowError('INVALID_ARGUMENT', `approx search method must be int8, hnsw or ivf, got ${String(this.approx)}`);
    this.rerank = o.rerank ?? 64;
    this.nprobe = o.nprobe;
    this.slack = o.decisionSlack ?? 0.03;
    for (const [name, v] of [['nprobe', this.nprobe], ['lists', o.lists], ['trainRows', o.trainRows], ['trainIterations', o.trainIterations]] as const) {
      if (v !== undefined && !(Number.isInteger(v) && v >= 1)) throw new FaceflowError('INVALID_ARGUMENT', `${name} must be an integer >= 1, got ${v}`);
    }
    if (!(this.slack >= 0 && this.slack <= 2)) throw new FaceflowError('INVALID_ARGUMENT', `decisionSlack must be between 0 and 2, got ${this.slack}`);
    if (!(this.approxRows >= 0)) throw new FaceflowError('INVALID_ARGUMENT', `approxRows must be >= 0, got ${this.approxRows}`);
    if (!(Number.isInteger(this.rerank) && this.rerank >= 1)) throw new FaceflowError('INVALID_ARGUMENT', `rerank must be an integer >= 1, got ${this.rerank}`);
    for (const m of ['hnsw', 'ivf'] as const) {
      if ((method === m || (method === 'auto' && this.approx === m)) && !loadUsearch()) {
        throw new FaceflowError('INVALID_ARGUMENT', `search method ${m} needs the usearch package, which did not load here: reinstall with \`npm ci\`, or use exact or int8`);
      }
    }
    this.f32 = new Float32Array(64 * dim);
    this.rowOwner = new Int32Array(64);
  }

  get rows(): number {
    return this.n;
  }

  /** The method configured for the current size (auto resolved). */
  private get wanted(): SearchMethod {
    return this.method === 'auto' ? (this.n < this.approxRows ? 'exact' : this.approx) : this.method!;
  }

  /** The method the next query uses. */
  get active(): SearchMethod {
    const m = this.wanted;
    if ((m === 'hnsw' || m === 'ivf') && !this.built(m)) return 'int8'; // graph or lists still catching up
    return m;
  }

  private built(m: 'hnsw' | 'ivf'): boolean {
    return m === 'hnsw' ? this.hnswRows >= this.n : this.ivf !== undefined && this.ivfRows >= this.n;
  }

  /** Whether the HNSW graph or the IVF lists hold every row (when one is the method in use). */
  /** The IVF quantiser in use: its lists and the rows it was trained at (undefined: none built yet). */
  get ivfLists(): { lists: number; trainedRows: number } | undefined {
    return this.ivf ? { lists: this.ivf.lists, trainedRows: this.ivf.trainedRows } : undefined;
  }

  /**
   * Holds the background build (HNSW graph, IVF lists) while a bulk load fills the index; the returned
   * function ends the hold and starts the build. Without it, a streamed load of 1M rows trained the IVF
   * quantiser again at every fourfold growth and kept the one trained at about 256k rows, with the lists
   * of that size (issue 14); held, it is trained once, on the whole gallery. Queries meanwhile use int8.
   */
  deferBuild(): () => void {
    this.deferred = true;
    if (this.building) clearImmediate(this.building);
    this.building = undefined;
    return () => {
      this.deferred = false;
      this.schedule();
    };
  }

  get ready(): boolean {
    const m = this.wanted;
    return (m !== 'hnsw' && m !== 'ivf') || this.built(m) || this.n === 0;
  }

  /** A free owner id (an identity's handle in the index). */
  newOwner(): number {
    const o = this.freeOwners.pop() ?? this.ownerRows.length;
    this.ownerRows[o] = [];
    return o;
  }

  rowsOf(owner: number): Float32Array[] {
    return (this.ownerRows[owner] ?? []).map((r) => this.f32.slice(r * this.dim, (r + 1) * this.dim));
  }

  countOf(owner: number): number {
    return this.ownerRows[owner]?.length ?? 0;
  }

  /** Appends rows for `owner`; the caller validated them (dimension, finite, unit norm). */
  add(owner: number, embeddings: Float32Array[]): void {
    this.checkOpen();
    const rows = this.ownerRows[owner];
    if (!rows) throw new FaceflowError('INVALID_ARGUMENT', `no owner ${owner} in the search index`);
    for (const e of embeddings) {
      if (e.length !== this.dim) throw new FaceflowError('INVALID_ARGUMENT', `embedding has ${e.length} values, the index wants ${this.dim}`);
    }
    this.reserve(this.n + embeddings.length);
    for (const e of embeddings) {
      const r = this.n++;
      this.f32.set(e, r * this.dim);
      if (this.i8) quantise(e, this.i8, r * this.dim);
      this.rowOwner[r] = owner;
      rows.push(r);
    }
    this.maxPerOwner = Math.max(this.maxPerOwner, rows.length);
    this.schedule();
  }

  /** Removes every row of `owner` and frees the owner id. */
  removeOwner(owner: number): void {
    this.checkOpen();
    const rows = this.ownerRows[owner];
    if (!rows) return;
    // highest row first, so a row moved down is never one still to be removed
    for (const r of [...rows].sort((a, b) => b - a)) this.removeRow(r);
    delete this.ownerRows[owner];
    this.freeOwners.push(owner);
  }

  /** Swap-removal: the last row moves into `r`; the graph is told of both changes. */
  private removeRow(r: number): void {
    const last = this.n - 1;
    const owner = this.rowOwner[r]!;
    const list = this.ownerRows[owner]!;
    list.splice(list.indexOf(r), 1);
    if (this.hnsw && r < this.hnswRows) this.hnsw.remove(BigInt(r));
    if (this.ivf && r < this.ivfRows) this.ivf.remove(r);
    if (r !== last) {
      const d = this.dim;
      this.f32.copyWithin(r * d, last * d, (last + 1) * d);
      this.i8?.copyWithin(r * d, last * d, (last + 1) * d);
      const movedOwner = this.rowOwner[last]!;
      this.rowOwner[r] = movedOwner;
      const ml = this.ownerRows[movedOwner]!;
      ml[ml.indexOf(last)] = r;
      if (this.hnsw && last < this.hnswRows) this.hnsw.remove(BigInt(last));
      if (this.hnsw && r < this.hnswRows) this.hnsw.add(BigInt(r), this.f32.subarray(r * d, (r + 1) * d), 1);
      if (this.ivf && last < this.ivfRows) this.ivf.rename(last, r);
      else if (this.ivf && r < this.ivfRows) this.ivf.addRows(this.i8!, r, r + 1); // the moved row was not in the lists yet
    }
    this.n--;
    if (this.hnswRows > this.n) this.hnswRows = this.n;
    if (this.ivfRows > this.n) this.ivfRows = this.n;
  }

  private reserve(rows: number): void {
    const cap = this.rowOwner.length;
    if (rows <= cap) return;
    let next = cap;
    while (next < rows) next *= 2;
    const f32 = new Float32Array(next * this.dim);
    f32.set(this.f32.subarray(0, this.n * this.dim));
    this.f32 = f32;
    if (this.i8) {
      const i8 = new Int8Array(next * this.dim);
      i8.set(this.i8.subarray(0, this.n * this.dim));
      this.i8 = i8;
    }
    const ro = new Int32Array(next);
    ro.set(this.rowOwner.subarray(0, this.n));
    this.rowOwner = ro;
  }

  private ensureI8(): Int8Array {
    if (!this.i8) {
      this.i8 = new Int8Array(this.rowOwner.length * this.dim);
      const d = this.dim;
      for (let r = 0; r < this.n; r++) quantise(this.f32.subarray(r * d, (r + 1) * d), this.i8, r * d);
    }
    return this.i8;
  }

  /** Starts (or continues) the background build when the HNSW graph or the IVF lists are the method in use. */
  private schedule(): void {
    const m = this.wanted;
    if (this.deferred) return;
    if (m === 'ivf') return this.scheduleIvf();
    if (m !== 'hnsw' || this.building || this.closed || this.hnswRows >= this.n) return;
    // one enrolment into a built graph is added at once; a bulk load is built in slices
    if (this.hnsw && this.n - this.hnswRows <= 16) {
      this.buildSlice(Infinity);
      return;
    }
    this.building = setImmediate(() => {
      this.building = undefined;
      this.buildSlice(this.o.buildSliceMs ?? 20);
      this.schedule();
    });
    this.building.unref?.();
  }

  private buildSlice(sliceMs: number): void {
    const us = loadUsearch()!;
    this.hnsw ??= new us.Index({
      dimensions: this.dim,
      metric: us.MetricKind.IP,
      quantization: us.ScalarKind.I8,
      connectivity: this.o.connectivity ?? 16,
      expansion_add: this.o.expansionAdd ?? 128,
      expansion_search: this.o.expansionSearch ?? 512,
      multi: false,
    });
    const start = performance.now();
    const d = this.dim;
    while (this.hnswRows < this.n && performance.now() - start < sliceMs) {
      const end = Math.min(this.n, this.hnswRows + 64);
      const keys = new BigUint64Array(end - this.hnswRows);
      for (let i = 0; i < keys.length; i++) keys[i] = BigInt(this.hnswRows + i);
      this.hnsw.add(keys, this.f32.subarray(this.hnswRows * d, end * d), 1);
      this.hnswRows = end;
    }
  }

  private scheduleIvf(): void {
    if (this.building || this.closed || this.n === 0) return;
    // retrain once the gallery has grown well past the quantiser (its lists grow long and slow)
    const stale = this.ivf && this.n > 4 * this.ivf.trainedRows;
    if (this.ivf && this.ivfRows >= this.n && !stale) return;
    // one enrolment into built lists is assigned at once; a bulk load and a training run in slices
    if (this.ivf && !stale && !this.ivfTraining && this.n - this.ivfRows <= 16) {
      this.ivfSlice(Infinity);
      return;
    }
    this.building = setImmediate(() => {
      this.building = undefined;
      this.ivfSlice(this.o.buildSliceMs ?? 20);
      this.scheduleIvf();
    });
    this.building.unref?.();
  }

  /**
   * One slice of the IVF build: training a quantiser on a sample of the rows (while the old lists, if any,
   * or int8 answer queries), then assigning rows to lists in chunks.
   */
  private ivfSlice(sliceMs: number): void {
    const start = performance.now();
    const i8 = this.ensureI8();
    if (!this.ivfTraining && (!this.ivf || this.n > 4 * this.ivf.trainedRows)) {
      const lists = this.o.lists ?? defaultIvfLists(this.n);
      const count = Math.min(this.n, this.o.trainRows ?? Math.max(16_384, 64 * lists));
      const d = this.dim;
      const sample = new Float32Array(count * d);
      // a stride over the rows, not the first ones: rows come in enrolment order, which has structure
      for (let s = 0; s < count; s++) {
        const r = Math.floor((s * this.n) / count);
        sample.set(this.f32.subarray(r * d, (r + 1) * d), s * d);
      }
      this.ivfTraining = IvfLists.train(loadUsearch()!, d, sample, count, { lists, iterations: this.o.trainIterations ?? 8, quantise, scale: Q_SCALE }, this.n);
    }
    while (this.ivfTraining && performance.now() - start < sliceMs) {
      const step = this.ivfTraining.next();
      if (step.done) {
        // the new lists replace the old ones once trained; they are filled from row 0
        this.ivfTraining = undefined;
        this.ivf = step.value;
        this.ivfRows = 0;
      }
    }
    while (this.ivf && !this.ivfTraining && this.ivfRows < this.n && performance.now() - start < sliceMs) {
      const end = Math.min(this.n, this.ivfRows + 1024);
      this.ivf.addRows(i8, this.ivfRows, end);
      this.ivfRows = end;
    }
  }

  /** Builds the whole graph or lists now (a benchmark's build time; tests); resolves when every row is in it. */
  async whenReady(): Promise<void> {
    while (!this.ready && !this.closed) {
      if (this.building) clearImmediate(this.building);
      this.building = undefined;
      if (this.wanted === 'ivf') this.ivfSlice(Infinity);
      else this.buildSlice(Infinity);
      await new Promise((r) => setImmediate(r));
    }
  }

  private checkOpen(): void {
    if (this.closed) throw new FaceflowError('INVALID_ARGUMENT', 'the gallery search index was closed: build a new gallery');
  }

  /**
   * The `k` nearest owners to `query`, nearest first, at exact (float) distances. With `decision` (identify's
   * rule), `ivf` makes sure of the decision rather than of every distance (without one, it probes four times
   * the lists where a list left out could hold a row nearer than the k-th found): where a row the probed lists missed,
   * up to the decision slack nearer than what was found, could change the decision, it probes four times the
   * lists, then eight while the decision keeps changing, and then the full int8 scan answers.
   */
  nearest(query: Float32Array, k: number, method: SearchMethod = this.active, rerank = this.rerank, nprobe?: number, decision?: DecisionRule): OwnerDistance[] {
    this.checkOpen();
    checkQuery(query, this.dim);
    if (this.n === 0) return [];
    // the k-th identity's best row ranks at most (k-1)*maxPerOwner+1 among rows
    const cover = (k - 1) * this.maxPerOwner + 1;
    const us = method === 'exact' && this.n <= JS_SCAN_MAX_ROWS ? null : loadUsearch();
    if (!us) return this.scanJs(query, k);
    if (method === 'exact') {
      const m = us.exactSearch(this.f32.subarray(0, this.n * this.dim), dense(query), this.dim, Math.min(this.n, cover), us.MetricKind.IP, 1);
      return this.rerankRows(query, Array.from(m.keys, Number), k);
    }
    const want = Math.min(this.n, Math.max(rerank, cover));
    if (method === 'hnsw' && this.hnsw && this.hnswRows >= this.n) {
      const m = this.hnsw.search(query, want, 1);
      const rows = Array.from(m.keys, Number).filter((r) => r < this.n);
      const found = this.rerankRows(query, rows, k);
      if (found.length >= Math.min(k, this.ownerCount())) return found;
    }
    const i8 = this.ensureI8();
    const q8 = new Int8Array(this.dim);
    quantise(query, q8, 0);
    if (method === 'ivf' && this.ivf && this.ivfRows >= this.n) {
      const ivf = this.ivf;
      const p = nprobe ?? this.nprobe ?? defaultNprobe(ivf.lists);
      const enough = Math.min(k, this.ownerCount());
      const probe = ivf.probe(query, q8, p, want);
      const found = this.rerankRows(query, probe.rows, k);
      if (!decision) {
        // no rule: the k nearest; where a list left out could hold a nearer row, probe four times the lists
        if (found.length >= enough && probe.unscannedFrom >= found[found.length - 1]!.distance) return found;
        const wider = this.rerankRows(query, probe.widen(4 * p).rows, k);
        if (wider.length >= enough) return wider;
      } else {
        this.ivfStats.queries++;
        const first = found.length >= enough ? this.decisionOf(found, decision) : undefined;
        if (first && !this.inDoubt(found, decision, first, probe.unscannedFrom)) return found;
        this.ivfStats.widened++;
        // widen to 4x, then 8x the lists while under half of them; a step whose decision equals the one
        // before it (or is out of doubt) answers; one that changes it widens again, the last to the full scan
        let before = first;
        for (const width of [4 * p, 8 * p]) {
          if (width > ivf.lists / 2 && width !== 4 * p) break;
          const wide = probe.widen(width);
          const wider = this.rerankRows(query, wide.rows, k);
          if (wider.length < enough) break;
          const now = this.decisionOf(wider, decision);
          if (now === before || !this.inDoubt(wider, decision, now, wide.unscannedFrom)) return wider;
          before = now;
          if (width >= ivf.lists) break;
        }
        this.ivfStats.scanned++;
      }
    }
    const m = us.exactSearch(i8.subarray(0, this.n * this.dim), q8, this.dim, want, us.MetricKind.IP, 1);
    return this.rerankRows(query, Array.from(m.keys, Number), k);
  }

  /** identify's decision on these owners (the owner named for a match). */
  private decisionOf(found: OwnerDistance[], rule: DecisionRule): string {
    const reason = decisionOf(found[0]!.distance, found[1]?.distance ?? null, rule);
    return reason === 'match' ? `match:${found[0]!.owner}` : reason;
  }

  /**
   * Whether the decision could be another one, found a row the probe missed. Two tests: a heuristic one
   * (the decision changes if the nearest or the second identity were up to the slack nearer: a probe misses
   * rows near the ones it found), and a bound (`unscannedFrom`: the lists left out could hold a row near
   * enough to change the decision; this catches a query whose own identity sits wholly in a list left out).
   */
  private inDoubt(found: OwnerDistance[], rule: DecisionRule, decision: string, unscannedFrom: number): boolean {
    const d1 = found[0]!.distance;
    const d2 = found[1]?.distance ?? null;
    const reason = decision.startsWith('match') ? 'match' : decision;
    const changes = (s: number): boolean =>
      [[d1 - s, d2], [d1, d2 === null ? null : d2 - s], [d1 - s, d2 === null ? null : d2 - s]].some(([a, b]) => decisionOf(Math.max(0, a!), b === null ? null : Math.max(0, b!), rule) !== reason);
    if (changes(this.slack)) return true;
    // a missed row at unscannedFrom, of another identity: nearer than the nearest (another identity could be
    // named, unless both stay above the threshold), or nearer than the second
    const u = unscannedFrom;
    if (u < d1) return !(reason === 'above-threshold' && u >= rule.threshold);
    return decisionOf(d1, Math.min(d2 ?? Infinity, u), rule) !== reason;
  }

  private ownerCount(): number {
    return this.ownerRows.length - this.freeOwners.length;
  }

  /** Exact float scores of `rows`, the best per owner, the k best owners. */
  private rerankRows(query: Float32Array, rows: number[], k: number): OwnerDistance[] {
    const best = new Map<number, number>();
    const d = this.dim;
    for (const r of rows) {
      if (r >= this.n) continue;
      let dot = 0;
      for (let j = 0, off = r * d; j < d; j++) dot += this.f32[off + j]! * query[j]!;
      const o = this.rowOwner[r]!;
      const b = best.get(o);
      if (b === undefined || dot > b) best.set(o, dot);
    }
    return nearestOwners(best, k);
  }

  /** The plain JS scan (small galleries, or where usearch does not load). */
  private scanJs(query: Float32Array, k: number): OwnerDistance[] {
    const best = new Map<number, number>();
    const d = this.dim;
    const f = this.f32;
    for (let r = 0, off = 0; r < this.n; r++, off += d) {
      let dot = 0;
      for (let j = 0; j < d; j++) dot += f[off + j]! * query[j]!;
      const o = this.rowOwner[r]!;
      const b = best.get(o);
      if (b === undefined || dot > b) best.set(o, dot);
    }
    return nearestOwners(best, k);
  }

  /** Stops the background build and drops the native graph (its memory goes with the next GC). */
  close(): void {
    if (this.building) clearImmediate(this.building);
    this.building = undefined;
    this.hnsw = undefined;
    this.hnswRows = 0;
    this.ivf = undefined;
    this.ivfTraining = undefined;
    this.ivfRows = 0;
    this.closed = true;
    this.i8 = undefined;
    this.f32 = new Float32Array(0);
    this.rowOwner = new Int32Array(0);
    this.ownerRows = [];
    this.n = 0;
  }
}

/** The k owners of highest dot product, nearest first (ties by owner), as L2 distances of unit vectors. */
function nearestOwners(best: Map<number, number>, k: number): OwnerDistance[] {
  return [...best]
    .sort((a, b) => b[1] - a[1] || a[0] - b[0])
    .slice(0, k)
    .map(([owner, dot]) => ({ owner, distance: Math.sqrt(Math.max(0, 2 - 2 * dot)) }));
}
