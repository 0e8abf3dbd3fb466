/**
 * The gallery's search index (issue 14): the rows (one per enrolled embedding) sit in one contiguous,
 * row-major Float32Array that grows by doubling and is kept dense by swap-removal, so an enrolment or a
 * deletion changes a row or two, never rebuilds the whole. Three ways to find the nearest identities, behind
 * one contract (`nearest`: the k nearest identities, each at the distance of its closest embedding):
 *
 * - `exact`: every row scored in float; in native SIMD code (usearch's exact search) when the package loads,
 *   else a JS loop. The reference the others are measured against.
 * - `int8`: every row scored on an int8 copy (a quarter of the memory read per query), then the best
 *   candidates re-scored in float, so the distances reported are the exact ones.
 * - `hnsw`: an HNSW graph (usearch, int8 vectors) finds the candidates, re-scored in float the same way.
 *   The graph is built in the background in short time slices; until it has caught up, queries use `int8`.
 *
 * `auto` picks exact below `approxRows` rows and the `approx` method from there. Embeddings are L2-normalised
 * (the gallery stores check it), so |q - e|^2 = 2 - 2 q.e and the nearest row is the one with the largest dot.
 */
import { createRequire } from 'node:module';
import { FaceflowError } from '@faceflow/shared';
import { dense } from './native.js';

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

export type SearchMethod = 'exact' | 'int8' | 'hnsw';

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
  /** longest time slice (ms) the background HNSW build takes before yielding (default 20) */
  buildSliceMs?: number;
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
  private closed = false;

  constructor(
    readonly dim: number,
    private readonly o: SearchIndexOptions = {},
  ) {
    const method = o.method ?? 'auto';
    if (!['auto', 'exact', 'int8', 'hnsw'].includes(method)) throw new FaceflowError('INVALID_ARGUMENT', `search method must be auto, exact, int8 or hnsw, got ${String(method)}`);
    this.method = method;
    this.approxRows = o.approxRows ?? 50_000;
    this.approx = o.approx ?? 'int8';
    this.rerank = o.rerank ?? 64;
    if (!(this.approxRows >= 0)) throw new FaceflowError('INVALID_ARGUMENT', `approxRows must be >= 0, got ${this.approxRows}`);
    if (!(Number.isInteger(this.rerank) && this.rerank >= 1)) throw new FaceflowError('INVALID_ARGUMENT', `rerank must be an integer >= 1, got ${this.rerank}`);
    if ((method === 'hnsw' || this.approx === 'hnsw') && !loadUsearch()) {
      throw new FaceflowError('INVALID_ARGUMENT', 'search method hnsw needs the usearch package, which did not load here: reinstall with `npm ci`, or use exact or int8');
    }
    this.f32 = new Float32Array(64 * dim);
    this.rowOwner = new Int32Array(64);
  }

  get rows(): number {
    return this.n;
  }

  /** The method the next query uses. */
  get active(): SearchMethod {
    const m = this.method === 'auto' ? (this.n < this.approxRows ? 'exact' : this.approx) : this.method!;
    if (m === 'hnsw' && this.hnswRows < this.n) return 'int8'; // graph still catching up
    return m;
  }

  /** Whether the HNSW graph holds every row (when it is the method in use). */
  get ready(): boolean {
    const m = this.method === 'auto' ? (this.n < this.approxRows ? 'exact' : this.approx) : this.method;
    return m !== 'hnsw' || this.hnswRows >= this.n;
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
    }
    this.n--;
    if (this.hnswRows > this.n) this.hnswRows = this.n;
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

  /** Starts (or continues) the background HNSW build when the graph is the method in use. */
  private schedule(): void {
    const m = this.method === 'auto' ? (this.n < this.approxRows ? 'exact' : this.approx) : this.method;
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

  /** Builds the whole graph now (a benchmark's build time; tests); resolves when every row is in it. */
  async whenReady(): Promise<void> {
    while (!this.ready && !this.closed) {
      if (this.building) clearImmediate(this.building);
      this.building = undefined;
      this.buildSlice(Infinity);
      await new Promise((r) => setImmediate(r));
    }
  }

  private checkOpen(): void {
    if (this.closed) throw new FaceflowError('INVALID_ARGUMENT', 'the gallery search index was closed: build a new gallery');
  }

  /** The `k` nearest owners to `query`, nearest first, at exact (float) distances. */
  nearest(query: Float32Array, k: number, method: SearchMethod = this.active, rerank = this.rerank): OwnerDistance[] {
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
    const m = us.exactSearch(i8.subarray(0, this.n * this.dim), q8, this.dim, want, us.MetricKind.IP, 1);
    return this.rerankRows(query, Array.from(m.keys, Number), k);
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
