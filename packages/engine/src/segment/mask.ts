/**
 * Binary masks at a frame's resolution, stored sparsely: a frame-sized mask is mostly zeros, so a mask keeps
 * only the rectangle of the frame its face occupies. Pure JS, no tensors: polygon rasterisation (scanline),
 * dilation, set operations, and the two wire formats: COCO run-length encoding (RLE) and PNG.
 */
import sharp from 'sharp';
import { FaceflowError } from '@faceflow/shared';
import type { Point } from '../image/geometry.js';

/** A binary mask of a `width` x `height` frame whose ones all lie inside the rectangle (x, y, w, h). */
export interface FaceMask {
  /** frame size */
  width: number;
  height: number;
  /** the rectangle of the frame that `data` covers, integer pixels inside the frame */
  x: number;
  y: number;
  w: number;
  h: number;
  /** w * h bytes, row-major, 1 = inside, 0 = outside */
  data: Uint8Array;
}

/** COCO's uncompressed RLE: column-major runs over the whole frame, starting with a run of zeros. */
export interface CocoRle {
  size: [number, number];
  counts: number[];
}

function checkFrame(width: number, height: number): void {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width <= 0 || height <= 0) {
    throw new FaceflowError('INVALID_ARGUMENT', `mask frame size must be positive integers, got ${width}x${height}`);
  }
}

export function emptyMask(width: number, height: number): FaceMask {
  checkFrame(width, height);
  return { width, height, x: 0, y: 0, w: 0, h: 0, data: new Uint8Array(0) };
}

/**
 * Rasterises a closed polygon (even-odd rule) into a mask. A pixel is inside when its centre is; pixel centres
 * are at integer coordinates, the convention of the engine's landmarks.
 */
export function rasterizePolygon(polygon: Point[], width: number, height: number): FaceMask {
  checkFrame(width, height);
  if (polygon.length < 3 || polygon.some((p) => !Number.isFinite(p.x) || !Number.isFinite(p.y))) return emptyMask(width, height);
  let minX = Infinity, minY = Infinity, maxX = -Infinity, maxY = -Infinity;
  for (const p of polygon) {
    minX = Math.min(minX, p.x); maxX = Math.max(maxX, p.x); minY = Math.min(minY, p.y); maxY = Math.max(maxY, p.y);
  }
  const x0 = Math.max(0, Math.ceil(minX));
  const x1 = Math.min(width - 1, Math.floor(maxX));
  const y0 = Math.max(0, Math.ceil(minY));
  const y1 = Math.min(height - 1, Math.floor(maxY));
  if (x1 < x0 || y1 < y0) return emptyMask(width, height);
  const w = x1 - x0 + 1;
  const h = y1 - y0 + 1;
  const data = new Uint8Array(w * h);
  const xs: number[] = [];
  const n = polygon.length;
  for (let j = y0; j <= y1; j++) {
    xs.length = 0;
    for (let k = 0; k < n; k++) {
      const a = polygon[k]!;
      const b = polygon[(k + 1) % n]!;
      // half-open on y so that a vertex exactly on the scanline is counted once
      if ((a.y <= j && b.y > j) || (b.y <= j && a.y > j)) xs.push(a.x + ((j - a.y) / (b.y - a.y)) * (b.x - a.x));
    }
    xs.sort((p, q) => p - q);
    const row = (j - y0) * w;
    for (let k = 0; k + 1 < xs.length; k += 2) {
      const from = Math.max(x0, Math.ceil(xs[k]!));
      const to = Math.min(x1, Math.ceil(xs[k + 1]!) - 1);
      if (from <= to) data.fill(1, row + from - x0, row + to - x0 + 1);
    }
  }
  return trimMask({ width, height, x: x0, y: y0, w, h, data });
}

/** Shrinks the rectangle to the ones' bounding box. */
export function trimMask(m: FaceMask): FaceMask {
  let minX = m.w, minY = m.h, maxX = -1, maxY = -1;
  const d = m.data;
  for (let j = 0; j < m.h; j++) {
    // a row's first and last one: only its empty ends are read
    const row = j * m.w;
    let a = 0;
    while (a < m.w && !d[row + a]) a++;
    if (a === m.w) continue;
    let b = m.w - 1;
    while (!d[row + b]) b--;
    if (a < minX) minX = a;
    if (b > maxX) maxX = b;
    if (j < minY) minY = j;
    maxY = j;
  }
  if (maxX < 0) return emptyMask(m.width, m.height);
  if (minX === 0 && minY === 0 && maxX === m.w - 1 && maxY === m.h - 1) return m;
  const w = maxX - minX + 1;
  const h = maxY - minY + 1;
  const data = new Uint8Array(w * h);
  for (let j = 0; j < h; j++) data.set(m.data.subarray((j + minY) * m.w + minX, (j + minY) * m.w + minX + w), j * w);
  return { width: m.width, height: m.height, x: m.x + minX, y: m.y + minY, w, h, data };
}

/** The mask's value at frame pixel (px, py). */
export function maskAt(m: FaceMask, px: number, py: number): number {
  const i = px - m.x;
  const j = py - m.y;
  return i >= 0 && j >= 0 && i < m.w && j < m.h ? m.data[j * m.w + i]! : 0;
}

export function maskArea(m: FaceMask): number {
  let s = 0;
  for (let k = 0; k < m.data.length; k++) s += m.data[k]!;
  return s;
}

/** The frame-sized dense mask (width * height bytes, 0/1). */
export function toDenseMask(m: FaceMask): Uint8Array {
  const out = new Uint8Array(m.width * m.height);
  for (let j = 0; j < m.h; j++) out.set(m.data.subarray(j * m.w, (j + 1) * m.w), (m.y + j) * m.width + m.x);
  return out;
}

/** A sparse mask from a dense frame-sized 0/1 (or 0/255) array. */
export function fromDenseMask(dense: Uint8Array, width: number, height: number): FaceMask {
  checkFrame(width, height);
  if (dense.length !== width * height) throw new FaceflowError('INVALID_ARGUMENT', `dense mask has ${dense.length} bytes, expected ${width * height}`);
  const data = new Uint8Array(dense.length);
  for (let k = 0; k < dense.length; k++) data[k] = dense[k]! ? 1 : 0;
  return trimMask({ width, height, x: 0, y: 0, w: width, h: height, data });
}

function sameFrame(a: FaceMask, b: FaceMask): void {
  if (a.width !== b.width || a.height !== b.height) {
    throw new FaceflowError('INVALID_ARGUMENT', `masks of different frames: ${a.width}x${a.height} vs ${b.width}x${b.height}`);
  }
}

/** Union of masks of one frame. */
export function unionMasks(masks: FaceMask[], width: number, height: number): FaceMask {
  const live = masks.filter((m) => m.w > 0 && m.h > 0);
  if (live.length === 0) return emptyMask(width, height);
  live.forEach((m) => sameFrame(m, live[0]!));
  const x0 = Math.min(...live.map((m) => m.x));
  const y0 = Math.min(...live.map((m) => m.y));
  const x1 = Math.max(...live.map((m) => m.x + m.w));
  const y1 = Math.max(...live.map((m) => m.y + m.h));
  const w = x1 - x0;
  const h = y1 - y0;
  const data = new Uint8Array(w * h);
  for (const m of live) {
    for (let j = 0; j < m.h; j++) {
      const src = j * m.w;
      const dst = (m.y - y0 + j) * w + (m.x - x0);
      for (let i = 0; i < m.w; i++) if (m.data[src + i]) data[dst + i] = 1;
    }
  }
  return { width, height, x: x0, y: y0, w, h, data };
}

/** Intersection of two masks of one frame. */
export function intersectMasks(a: FaceMask, b: FaceMask): FaceMask {
  sameFrame(a, b);
  const x0 = Math.max(a.x, b.x), y0 = Math.max(a.y, b.y);
  const x1 = Math.min(a.x + a.w, b.x + b.w), y1 = Math.min(a.y + a.h, b.y + b.h);
  if (x1 <= x0 || y1 <= y0) return emptyMask(a.width, a.height);
  const w = x1 - x0, h = y1 - y0;
  const data = new Uint8Array(w * h);
  for (let j = 0; j < h; j++) {
    for (let i = 0; i < w; i++) {
      data[j * w + i] = a.data[(y0 + j - a.y) * a.w + (x0 + i - a.x)]! & b.data[(y0 + j - b.y) * b.w + (x0 + i - b.x)]!;
    }
  }
  return trimMask({ width: a.width, height: a.height, x: x0, y: y0, w, h, data });
}

/**
 * Dilates a mask by `radius` pixels (Euclidean distance, computed exactly with the separable squared-distance
 * transform of Felzenszwalb and Huttenlocher 2012 on the mask's rectangle grown by the radius).
 */
export function dilateMask(m: FaceMask, radius: number): FaceMask {
  if (!(radius >= 0) || !Number.isFinite(radius)) throw new FaceflowError('INVALID_ARGUMENT', `dilation radius must be >= 0, got ${radius}`);
  const r = Math.floor(radius);
  if (r === 0 || m.w === 0) return m;
  const x0 = Math.max(0, m.x - r), y0 = Math.max(0, m.y - r);
  const x1 = Math.min(m.width, m.x + m.w + r), y1 = Math.min(m.height, m.y + m.h + r);
  const w = x1 - x0, h = y1 - y0;
  const INF = 1e20;
  const d = new Float64Array(w * h).fill(INF);
  for (let j = 0; j < m.h; j++) {
    for (let i = 0; i < m.w; i++) if (m.data[j * m.w + i]) d[(m.y - y0 + j) * w + (m.x - x0 + i)] = 0;
  }
  const n = Math.max(w, h);
  const f = new Float64Array(n), out = new Float64Array(n), z = new Float64Array(n + 1);
  const v = new Int32Array(n);
  const edt1d = (len: number): void => {
    let k = 0;
    v[0] = 0; z[0] = -INF; z[1] = INF;
    for (let q = 1; q < len; q++) {
      let s = (f[q]! + q * q - (f[v[k]!]! + v[k]! * v[k]!)) / (2 * q - 2 * v[k]!);
      while (s <= z[k]!) {
        k--;
        s = (f[q]! + q * q - (f[v[k]!]! + v[k]! * v[k]!)) / (2 * q - 2 * v[k]!);
      }
      k++;
      v[k] = q; z[k] = s; z[k + 1] = INF;
    }
    k = 0;
    for (let q = 0; q < len; q++) {
      while (z[k + 1]! < q) k++;
      out[q] = (q - v[k]!) * (q - v[k]!) + f[v[k]!]!;
    }
  };
  for (let i = 0; i < w; i++) {
    for (let j = 0; j < h; j++) f[j] = d[j * w + i]!;
    edt1d(h);
    for (let j = 0; j < h; j++) d[j * w + i] = out[j]!;
  }
  const data = new Uint8Array(w * h);
  const r2 = radius * radius;
  for (let j = 0; j < h; j++) {
    for (let i = 0; i < w; i++) f[i] = d[j * w + i]!;
    edt1d(w);
    for (let i = 0; i < w; i++) data[j * w + i] = out[i]! <= r2 ? 1 : 0;
  }
  return { width: m.width, height: m.height, x: x0, y: y0, w, h, data };
}

/** COCO RLE (uncompressed counts): column-major runs over the whole frame, first run = zeros. */
export function maskToRle(m: FaceMask): CocoRle {
  const counts: number[] = [];
  let current = 0;
  let run = 0;
  const push = (value: number, len: number): void => {
    if (len === 0) return;
    if (value === current) run += len;
    else {
      counts.push(run);
      current = value;
      run = len;
    }
  };
  for (let i = 0; i < m.width; i++) {
    const inside = i >= m.x && i < m.x + m.w;
    if (!inside) {
      push(0, m.height);
      continue;
    }
    push(0, m.y);
    for (let j = 0; j < m.h; j++) push(m.data[j * m.w + (i - m.x)]!, 1);
    push(0, m.height - m.y - m.h);
  }
  counts.push(run);
  return { size: [m.height, m.width], counts };
}

export function rleToMask(rle: CocoRle): FaceMask {
  const [height, width] = rle.size;
  checkFrame(width, height);
  const dense = new Uint8Array(width * height);
  let pos = 0;
  let value = 0;
  for (const c of rle.counts) {
    if (!Number.isInteger(c) || c < 0 || pos + c > width * height) throw new FaceflowError('INVALID_ARGUMENT', 'RLE counts do not fit the mask size');
    if (value) {
      for (let k = pos; k < pos + c; k++) dense[(k % height) * width + Math.floor(k / height)] = 1;
    }
    pos += c;
    value ^= 1;
  }
  if (pos !== width * height) throw new FaceflowError('INVALID_ARGUMENT', `RLE covers ${pos} pixels, the mask has ${width * height}`);
  return fromDenseMask(dense, width, height);
}

/** pycocotools' compressed RLE string (rleToString: LEB128-like, 5 bits a char, deltas after the second run). */
export function rleCountsToString(counts: number[]): string {
  let s = '';
  for (let i = 0; i < counts.length; i++) {
    let x = counts[i]!;
    if (i > 2) x -= counts[i - 2]!;
    let more = true;
    while (more) {
      let c = x & 0x1f;
      x >>= 5;
      more = c & 0x10 ? x !== -1 : x !== 0;
      if (more) c |= 0x20;
      s += String.fromCharCode(c + 48);
    }
  }
  return s;
}

/** Inverse of rleCountsToString (pycocotools rleFrString). */
export function rleCountsFromString(s: string): number[] {
  const counts: number[] = [];
  let p = 0;
  while (p < s.length) {
    let x = 0;
    let k = 0;
    let more = true;
    while (more) {
      if (p >= s.length) throw new FaceflowError('INVALID_ARGUMENT', 'truncated compressed RLE string');
      const c = s.charCodeAt(p) - 48;
      x |= (c & 0x1f) << (5 * k);
      more = (c & 0x20) !== 0;
      p++;
      k++;
      if (!more && c & 0x10) x |= -1 << (5 * k);
    }
    if (counts.length > 2) x += counts[counts.length - 2]!;
    counts.push(x);
  }
  return counts;
}

/** A grey PNG of the whole frame: 255 inside the mask, 0 outside. */
export async function maskToPng(m: FaceMask): Promise<Buffer> {
  const dense = toDenseMask(m);
  for (let k = 0; k < dense.length; k++) dense[k] = dense[k] ? 255 : 0;
  return sharp(Buffer.from(dense.buffer, dense.byteOffset, dense.byteLength), { raw: { width: m.width, height: m.height, channels: 1 } })
    .toColourspace('b-w')
    .png({ compressionLevel: 9, palette: false })
    .toBuffer();
}

/** Intersection over union and precision (share of `predicted` inside `truth`) of two dense frame masks. */
export function maskScores(predicted: Uint8Array, truth: Uint8Array): { iou: number; precision: number; recall: number; predicted: number; truth: number } {
  if (predicted.length !== truth.length) throw new FaceflowError('INVALID_ARGUMENT', `masks differ in size: ${predicted.length} vs ${truth.length}`);
  let inter = 0, p = 0, t = 0;
  for (let k = 0; k < predicted.length; k++) {
    const a = predicted[k] ? 1 : 0;
    const b = truth[k] ? 1 : 0;
    inter += a & b;
    p += a;
    t += b;
  }
  const union = p + t - inter;
  return { iou: union === 0 ? 1 : inter / union, precision: p === 0 ? 0 : inter / p, recall: t === 0 ? 1 : inter / t, predicted: p, truth: t };
}

/**
 * 4-connected flood over a w x h grid: from the cells already on `stack` (and set in `out`), every cell that
 * `ok` accepts and that touches the flood joins it. `ok` may be asked about a cell more than once (from each
 * neighbour that reaches it): callers memoise when it is costly.
 */
export function flood4(out: Uint8Array, w: number, h: number, stack: number[], ok: (k: number) => boolean): void {
  const n = w * h;
  while (stack.length > 0) {
    const k = stack.pop()!;
    const i = k % w;
    if (i > 0 && !out[k - 1] && ok(k - 1)) { out[k - 1] = 1; stack.push(k - 1); }
    if (i + 1 < w && !out[k + 1] && ok(k + 1)) { out[k + 1] = 1; stack.push(k + 1); }
    if (k >= w && !out[k - w] && ok(k - w)) { out[k - w] = 1; stack.push(k - w); }
    if (k + w < n && !out[k + w] && ok(k + w)) { out[k + w] = 1; stack.push(k + w); }
  }
}
