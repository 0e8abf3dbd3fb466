/**
 * An inverted-file index (IVF, issue 14) over the search index's int8 rows: a spherical k-means coarse
 * quantiser (unit centroids, assignment by largest dot) trained on a sample of the rows, and one list per
 * centroid holding its rows' int8 codes contiguously, so a query scans only the `nprobe` lists whose
 * centroids are nearest, each in one native SIMD call. Unlike a graph, adding a row is one assignment (a dot
 * with every centroid) and deleting one is a swap inside its list: no rebuild, and a build costs a few
 * passes over a sample plus one assignment pass, not a graph insertion per row.
 *
 * Rows are named by the search index's row numbers; the index tells this one when a row is removed or moved
 * (its swap-removal), see SearchIndex.removeRow.
 */
import { dense } from './native.js';

type Usearch = typeof import('usearch');

/** rows assigned per native call while training or assigning (bounds one background slice) */
const CHUNK = 1024;

export interface IvfTrainOptions {
  lists: number;
  iterations: number;
  /** quantises a float vector into int8 at `off` (the search index's quantiser, so centroids and rows agree) */
  quantise: (src: Float32Array, dst: Int8Array, off: number) => void;
  /** the quantiser's scale (an int8 component is the float one times this) */
  scale: number;
}

/** What a probe found: the candidate rows, and a lower bound of the distance of every row it did not scan. */
export interface Probe {
  rows: number[];
  /** no row outside the probed lists is nearer than this (L2; Infinity when every list was probed) */
  unscannedFrom: number;
}

/** slack on a list's radius for the int8 rounding of rows and centroids */
const RADIUS_SLACK = 0.02;

export class IvfLists {
  private codes: Int8Array[];
  private ids: Int32Array[];
  private readonly sizes: Int32Array;
  private rowList = new Int32Array(0);
  private rowPos = new Int32Array(0);
  private readonly centroids8: Int8Array;
  /** the largest distance of a row from its list's centroid (never shrinks on deletion: a bound) */
  private readonly radius: Float32Array;

  private constructor(
    private readonly us: Usearch,
    readonly dim: number,
    readonly lists: number,
    private readonly centroids: Float32Array,
    quantise: IvfTrainOptions['quantise'],
    private readonly scale: number,
    /** rows the quantiser was trained for (the index retrains once the gallery has grown well past it) */
    readonly trainedRows: number,
  ) {
    this.centroids8 = new Int8Array(lists * dim);
    for (let c = 0; c < lists; c++) quantise(centroids.subarray(c * dim, (c + 1) * dim), this.centroids8, c * dim);
    this.codes = Array.from({ length: lists }, () => new Int8Array(16 * dim));
    this.ids = Array.from({ length: lists }, () => new Int32Array(16));
    this.sizes = new Int32Array(lists);
    this.radius = new Float32Array(lists);
  }

  /**
   * Trains the quantiser on `sample` (`count` float rows, unit norm, in an order free of structure) as a
   * generator that yields after each native chunk, so the caller can run it in background time slices.
   */
  static *train(us: Usearch, dim: number, sample: Float32Array, count: number, o: IvfTrainOptions, trainedRows: number): Generator<void, IvfLists> {
    const lists = Math.max(1, Math.min(o.lists, count));
    // initial centroids: evenly spaced sample rows (the sample is a stride over the rows, so these spread)
    const cent = new Float32Array(lists * dim);
    for (let c = 0; c < lists; c++) {
      const r = Math.floor((c * count) / lists);
      cent.set(sample.subarray(r * dim, (r + 1) * dim), c * dim);
    }
    const sample8 = new Int8Array(count * dim);
    for (let r = 0; r < count; r++) o.quantise(sample.subarray(r * dim, (r + 1) * dim), sample8, r * dim);
    const assign = new Int32Array(count);
    const cent8 = new Int8Array(lists * dim);
    for (let it = 0; it < o.iterations; it++) {
      for (let c = 0; c < lists; c++) o.quantise(cent.subarray(c * dim, (c + 1) * dim), cent8, c * dim);
      for (let s = 0; s < count; s += CHUNK) {
        const e = Math.min(count, s + CHUNK);
        nearestCentroids(us, cent8, sample8.subarray(s * dim, e * dim), dim, assign, s);
        yield;
      }
      const sum = new Float64Array(lists * dim);
      const members = new Int32Array(lists);
      for (let r = 0; r < count; r++) {
        const c = assign[r]!;
        members[c]!++;
        for (let j = 0, so = r * dim, co = c * dim; j < dim; j++) sum[co + j]! += sample[so + j]!;
      }
      let reseed = 0;
      for (let c = 0; c < lists; c++) {
        const co = c * dim;
        if (members[c] === 0) {
          // an empty list takes a sample row (spread by a stride), so no centroid is wasted
          const r = Math.floor(((reseed++ * 7919 + c) % count));
          cent.set(sample.subarray(r * dim, (r + 1) * dim), co);
          continue;
        }
        let n = 0;
        for (let j = 0; j < dim; j++) n += sum[co + j]! * sum[co + j]!;
        n = Math.sqrt(n) || 1;
        for (let j = 0; j < dim; j++) cent[co + j] = sum[co + j]! / n;
      }
      yield;
    }
    return new IvfLists(us, dim, lists, cent, o.quantise, o.scale, trainedRows);
  }

  /** Assigns rows [from, to) of `rows8` (the index's int8 rows) to their lists. */
  addRows(rows8: Int8Array, from: number, to: number): void {
    const d = this.dim;
    const assign = new Int32Array(to - from);
    nearestCentroids(this.us, this.centroids8, rows8.subarray(from * d, to * d), d, assign, 0);
    this.reserveRows(to);
    for (let r = from; r < to; r++) this.insert(r, assign[r - from]!, rows8.subarray(r * d, (r + 1) * d));
  }

  private insert(row: number, list: number, code: Int8Array): void {
    const d = this.dim;
    let size = this.sizes[list]!;
    if (size === this.ids[list]!.length) {
      const codes = new Int8Array(size * 2 * d);
      codes.set(this.codes[list]!);
      this.codes[list] = codes;
      const ids = new Int32Array(size * 2);
      ids.set(this.ids[list]!);
      this.ids[list] = ids;
    }
    this.codes[list]!.set(code, size * d);
    let dot = 0;
    for (let j = 0, co = list * d; j < d; j++) dot += code[j]! * this.centroids8[co + j]!;
    const dist = Math.sqrt(Math.max(0, 2 - (2 * dot) / (this.scale * this.scale))) + RADIUS_SLACK;
    if (dist > this.radius[list]!) this.radius[list] = dist;
    this.ids[list]![size] = row;
    this.rowList[row] = list;
    this.rowPos[row] = size;
    this.sizes[list] = ++size;
  }

  private reserveRows(rows: number): void {
    if (rows <= this.rowList.length) return;
    const next = Math.max(rows, this.rowList.length * 2, 64);
    const rl = new Int32Array(next);
    rl.set(this.rowList);
    this.rowList = rl;
    const rp = new Int32Array(next);
    rp.set(this.rowPos);
    this.rowPos = rp;
  }

  /** Drops `row` from its list (the list's last entry moves into its place). */
  remove(row: number): void {
    const d = this.dim;
    const list = this.rowList[row]!;
    const pos = this.rowPos[row]!;
    const last = this.sizes[list]! - 1;
    if (pos !== last) {
      const codes = this.codes[list]!;
      codes.copyWithin(pos * d, last * d, (last + 1) * d);
      const moved = this.ids[list]![last]!;
      this.ids[list]![pos] = moved;
      this.rowPos[moved] = pos;
    }
    this.sizes[list] = last;
  }

  /** The index moved row `from` (same vector) to row number `to`. */
  rename(from: number, to: number): void {
    const list = this.rowList[from]!;
    const pos = this.rowPos[from]!;
    this.ids[list]![pos] = to;
    this.rowList[to] = list;
    this.rowPos[to] = pos;
  }

  /**
   * The `want` rows of largest int8 dot among the lists of the `nprobe` centroids nearest to `query`
   * (`q8`: the query quantised like the rows), best first. `widen` scans the next lists in the same order
   * and merges, so a widened probe never scans a list twice.
   */
  probe(query: Float32Array, q8: Int8Array, nprobe: number, want: number): Probe & { widen(nprobe: number): Probe } {
    const d = this.dim;
    // every centroid, nearest first: the first ones are scanned, the others bound what was not
    const near = this.us.exactSearch(this.centroids, dense(query), d, this.lists, this.us.MetricKind.IP, 1);
    const order = Array.from(near.keys, Number);
    const rows: number[] = [];
    const dist: number[] = [];
    let scanned = 0;
    const scanTo = (p: number): Probe => {
      p = Math.min(p, this.lists);
      for (; scanned < p; scanned++) {
        const list = order[scanned]!;
        const size = this.sizes[list]!;
        if (size === 0) continue;
        const m = this.us.exactSearch(this.codes[list]!.subarray(0, size * d), q8, d, Math.min(size, want), this.us.MetricKind.IP, 1);
        const ids = this.ids[list]!;
        for (let i = 0; i < m.keys.length; i++) {
          rows.push(ids[Number(m.keys[i]!)]!);
          dist.push(m.distances[i]!);
        }
      }
      let unscannedFrom = Infinity;
      for (let i = p; i < order.length; i++) {
        const list = order[i]!;
        if (this.sizes[list] === 0) continue;
        // IP distance is 1 - dot; a row of the list is no nearer than the centroid's distance less the radius
        const toCentroid = Math.sqrt(Math.max(0, 2 * near.distances[i]!));
        unscannedFrom = Math.min(unscannedFrom, Math.max(0, toCentroid - this.radius[list]!));
      }
      if (rows.length <= want) return { rows: [...rows], unscannedFrom };
      const best = Array.from(rows.keys()).sort((a, b) => dist[a]! - dist[b]!);
      return { rows: best.slice(0, want).map((i) => rows[i]!), unscannedFrom };
    };
    return { ...scanTo(nprobe), widen: scanTo };
  }

  /** The rows held (every row the index has assigned). */
  get size(): number {
    let s = 0;
    for (const n of this.sizes) s += n;
    return s;
  }
}

/** For each int8 row of `rows8`, the centroid of largest dot, written to `out` from `at`. */
function nearestCentroids(us: Usearch, cent8: Int8Array, rows8: Int8Array, dim: number, out: Int32Array, at: number): void {
  const count = rows8.length / dim;
  if (count === 0) return;
  const m = us.exactSearch(cent8, dense(rows8), dim, 1, us.MetricKind.IP, 1);
  const keys = m.keys as BigUint64Array;
  for (let i = 0; i < count; i++) out[at + i] = Number(keys[i]!);
}
