/**
 * Face segmentation: a mask per face at the frame's resolution, as a polygon and a binary mask.
 *
 * Methods (measured on LFW Part Labels in BENCHMARKS.md, "Segmentation (issue 4)"):
 *   - `mesh`: the outline of the MediaPipe face mesh (468 points, on a crop upright along the eye line): the
 *     convex hull of its points, which on a frontal face is the silhouette FACEMESH_FACE_OVAL traces (forehead
 *     top to chin) and on a profile also takes in the nose and lips; rasterised by scanline fill. Face only:
 *     no ears, no neck.
 *   - `landmarks`: no extra model: the 68-point jaw line (ear to ear through the chin) closed by the eyebrows
 *     raised towards the hairline. Cheaper, coarser at the forehead.
 * Either can grow (`grow: true`) into the skin around the outline: the forehead up to the hairline, the ears
 * and the neck. A colour model of this face's own skin (YCbCr, sampled inside its cheeks and nose, where the
 * landmarks say skin is), set against a model of the colours around the head (hair, background: k-means of
 * a ring outside it), decides which pixels look like skin; the mask grows from the outline through connected
 * skin-like pixels, only inside a region around the face (see `growRegion`), and the outline's outer edge is
 * first peeled of what looks like the surroundings (hair over the forehead). Clothing, hair and background
 * that do not look like the face's skin stay out; skin-coloured hair or walls next to the face, necks in
 * shadow and beards are where it errs (BENCHMARKS.md).
 *
 * Everything here is a pure function of (RgbImage, face geometry) except the model call in FaceSegmenter,
 * so a pipeline stage can call it per frame.
 */
import { FaceflowError } from '@faceflow/shared';
import { warpAffine, type Point, type RgbImage } from '../image/geometry.js';
import { type FaceMask, emptyMask, flood4, rasterizePolygon, trimMask, unionMasks } from './mask.js';
import { FaceMesh, type MeshResult, eyeLineAngle68, meshRoiFromLandmarks, meshRoiFromMesh, type Point3 } from '../models/facemesh.js';
import { type SkinClassifier, type SkinField, learnedMask, loadSkinClassifier, skinField } from './skin-classifier.js';

/** MediaPipe FACEMESH_FACE_OVAL as a closed loop: 10 (forehead top), clockwise in the image, 152 (chin) ... */
export const FACE_OVAL: readonly number[] = [
  10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377,
  152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109,
];
/** positions in FACE_OVAL of 454 and 234, the widest points (level with the ears' tragus) */
const OVAL_JAW_START = 8;
const OVAL_JAW_END = 28;

export type SegmentMethod = 'mesh' | 'landmarks';

/** The face oval polygon from a 468-point mesh, image pixels. */
export function faceOvalPolygon(mesh: Point[]): Point[] {
  if (mesh.length < 468) throw new FaceflowError('INVALID_ARGUMENT', `faceOvalPolygon needs the 468-point mesh, got ${mesh.length} points`);
  return FACE_OVAL.map((i) => ({ x: mesh[i]!.x, y: mesh[i]!.y }));
}

/**
 * The mesh's outline: the convex hull of all 468 points. On a frontal face it is the face oval (the oval's
 * points are the hull's); on a profile it also takes in the nose and lips, which stick out of the silhouette
 * that FACE_OVAL traces on the canonical, frontal face.
 */
export function meshOutline(mesh: Point[]): Point[] {
  if (mesh.length < 468) throw new FaceflowError('INVALID_ARGUMENT', `meshOutline needs the 468-point mesh, got ${mesh.length} points`);
  return convexHull(mesh.slice(0, 468));
}

/** Andrew's monotone chain; counter-clockwise in a y-down image, first point not repeated. */
export function convexHull(points: Point[]): Point[] {
  const p = points.map((q) => ({ x: q.x, y: q.y })).sort((a, b) => a.x - b.x || a.y - b.y);
  if (p.length < 3) return p;
  const cross = (o: Point, a: Point, b: Point): number => (a.x - o.x) * (b.y - o.y) - (a.y - o.y) * (b.x - o.x);
  const lower: Point[] = [];
  for (const q of p) {
    while (lower.length >= 2 && cross(lower[lower.length - 2]!, lower[lower.length - 1]!, q) <= 0) lower.pop();
    lower.push(q);
  }
  const upper: Point[] = [];
  for (let i = p.length - 1; i >= 0; i--) {
    const q = p[i]!;
    while (upper.length >= 2 && cross(upper[upper.length - 2]!, upper[upper.length - 1]!, q) <= 0) upper.pop();
    upper.push(q);
  }
  return [...lower.slice(0, -1), ...upper.slice(0, -1)];
}

/** The jaw line of the mesh's oval, from the image-right ear level (454) through the chin to the image-left one (234). */
export function meshJawLine(mesh: Point[]): Point[] {
  return FACE_OVAL.slice(OVAL_JAW_START, OVAL_JAW_END + 1).map((i) => ({ x: mesh[i]!.x, y: mesh[i]!.y }));
}

export interface LandmarkPolygonOptions {
  /**
   * how far the eyebrows are raised towards the hairline, as a fraction of the eyebrow-to-chin distance
   * (default 0.4; in an average face the forehead is about half that distance, and hair often hides its top)
   */
  foreheadRaise?: number;
}

/** Face polygon from the 68 iBUG landmarks: jaw line 0..16, then the brows 26..17 raised along the face's up axis. */
export function landmarkPolygon(landmarks68: Point[], options: LandmarkPolygonOptions = {}): Point[] {
  if (landmarks68.length !== 68) throw new FaceflowError('INVALID_ARGUMENT', `landmarkPolygon needs 68 landmarks, got ${landmarks68.length}`);
  const raise = options.foreheadRaise ?? 0.4;
  const brows = landmarks68.slice(17, 27);
  const browMid = mean(brows);
  const chin = landmarks68[8]!;
  // the face's up axis: from the chin to the brows' centre
  const ux = browMid.x - chin.x;
  const uy = browMid.y - chin.y;
  const poly: Point[] = landmarks68.slice(0, 17).map((p) => ({ x: p.x, y: p.y }));
  for (let i = 26; i >= 17; i--) {
    const p = landmarks68[i]!;
    poly.push({ x: p.x + ux * raise, y: p.y + uy * raise });
  }
  return poly;
}

/** The jaw line 0..16 of the 68 landmarks. */
export function landmarkJawLine(landmarks68: Point[]): Point[] {
  return landmarks68.slice(0, 17).map((p) => ({ x: p.x, y: p.y }));
}

function mean(points: Point[]): Point {
  let x = 0, y = 0;
  for (const p of points) { x += p.x; y += p.y; }
  return { x: x / points.length, y: y / points.length };
}

// ------------------------------------------------------------------------------------------ skin growth

export interface GrowOptions {
  /** how far the forehead may extend above the outline's top, as a fraction of the outline's height (default 0.3) */
  forehead?: number;
  /** how far the sides (ears) may extend beyond the outline, as a fraction of its width, each side (default 0.12) */
  sides?: number;
  /** how far below the chin the neck may reach, as a fraction of the outline's height (default 0.6) */
  neck?: number;
  /** the neck band's width as a fraction of the outline's width (default 0.75) */
  neckWidth?: number;
  /** chroma (Cb, Cr) Mahalanobis distance under which a pixel is skin-coloured (default 3) */
  chroma?: number;
  /** luma range of skin relative to the sampled mean luma: [low, high] (default [0.35, 1.5]) */
  luma?: [number, number];
  /**
   * FaceSegmenter's default: 'learned' with the mesh method, 'contrast' with the landmarks method; the bare
   * functions' default: 'contrast'.
   * 'contrast': a pixel is skin when it is likelier under this face's skin colours than under the
   * colours around the head (hair, background: sampled in a ring outside the region), and within the chroma
   * and luma bounds above; also trims the outline's outer band of pixels that look like the surroundings
   * (hair over the forehead, a beard at the jaw). 'skin-only': the bounds alone, no trimming.
   * 'learned': the trees of `skinClassifier` (skin-classifier.ts) decide every pixel around the inner face,
   * outline included, from its position in the face's frame and its colour against the same two models; the
   * region, chroma, luma and trimBand options do not apply to it.
   */
  classifier?: GrowClassifier;
  /** the 'learned' classifier's trees (FaceSegmenter passes its own; loadSkinClassifier() reads the bundled one) */
  skinClassifier?: SkinClassifier;
  /** width of the outline's outer band that may be trimmed, as a fraction of the outline's width (default 0.1) */
  trimBand?: number;
}

export type GrowClassifier = 'contrast' | 'skin-only' | 'learned';
export const GROW_CLASSIFIERS: readonly GrowClassifier[] = ['contrast', 'skin-only', 'learned'];

/** A colour model of one face's skin in YCbCr: the chroma's mean and inverse covariance, and the mean luma. */
export interface SkinModel {
  y: number;
  cb: number;
  cr: number;
  /** inverse chroma covariance [a, b, b, d] */
  inv: [number, number, number, number];
}

function ycbcr(r: number, g: number, b: number): [number, number, number] {
  return [0.299 * r + 0.587 * g + 0.114 * b, 128 - 0.168736 * r - 0.331264 * g + 0.5 * b, 128 + 0.5 * r - 0.418688 * g - 0.081312 * b];
}

/**
 * The skin model of the pixels of `sample` (the cheeks and nose): robust, the 15% of pixels furthest from
 * the median chroma (a stray eyebrow hair, a glasses rim) are dropped. Undefined when too few pixels.
 */
export function skinModel(image: RgbImage, sample: FaceMask): SkinModel | undefined {
  let n = 0;
  for (let k = 0; k < sample.data.length; k++) n += sample.data[k]!;
  if (n < 20) return undefined;
  const ys = new Float32Array(n), cbs = new Float32Array(n), crs = new Float32Array(n);
  const hcb = new Uint32Array(256), hcr = new Uint32Array(256);
  let t = 0;
  for (let j = 0; j < sample.h; j++) {
    for (let i = 0; i < sample.w; i++) {
      if (!sample.data[j * sample.w + i]) continue;
      const o = ((sample.y + j) * image.width + sample.x + i) * 3;
      const [y, cb, cr] = ycbcr(image.data[o]!, image.data[o + 1]!, image.data[o + 2]!);
      ys[t] = y; cbs[t] = cb; crs[t] = cr;
      hcb[Math.min(255, Math.max(0, Math.round(cb)))]!++;
      hcr[Math.min(255, Math.max(0, Math.round(cr)))]!++;
      t++;
    }
  }
  // medians and the 85th percentile of the distance to them from histograms: O(n), no sort
  const quantile = (h: Uint32Array, q: number, binWidth = 1): number => {
    let acc = 0;
    for (let k = 0; k < h.length; k++) {
      acc += h[k]!;
      if (acc >= q * n) return (k + 0.5) * binWidth;
    }
    return h.length * binWidth;
  };
  const mcb = quantile(hcb, 0.5), mcr = quantile(hcr, 0.5);
  const dist = new Float32Array(n);
  const hd = new Uint32Array(512);
  for (let k = 0; k < n; k++) {
    dist[k] = Math.hypot(cbs[k]! - mcb, crs[k]! - mcr);
    hd[Math.min(511, Math.floor(dist[k]! * 2))]!++;
  }
  const cut = quantile(hd, 0.85, 0.5);
  let y = 0, cb = 0, cr = 0, m = 0;
  for (let k = 0; k < n; k++) {
    if (dist[k]! > cut) continue;
    y += ys[k]!; cb += cbs[k]!; cr += crs[k]!; m++;
  }
  if (m < 10) return undefined;
  y /= m; cb /= m; cr /= m;
  let saa = 0, sab = 0, sbb = 0;
  for (let k = 0; k < n; k++) {
    if (dist[k]! > cut) continue;
    const a = cbs[k]! - cb, b = crs[k]! - cr;
    saa += a * a; sab += a * b; sbb += b * b;
  }
  // a floor on the variance keeps a flat-coloured face (or a synthetic image) from a zero-width model
  saa = saa / m + 4; sab /= m; sbb = sbb / m + 4;
  const det = saa * sbb - sab * sab;
  return { y, cb, cr, inv: [sbb / det, -sab / det, -sab / det, saa / det] };
}

/** Is (r, g, b) this face's skin colour? */
export function isSkin(model: SkinModel, r: number, g: number, b: number, chroma = 3, luma: [number, number] = [0.35, 1.5]): boolean {
  const [y, cb, cr] = ycbcr(r, g, b);
  if (y < model.y * luma[0] || y > model.y * luma[1]) return false;
  const a = cb - model.cb, c = cr - model.cr;
  const q = model.inv;
  return a * (q[0] * a + q[1] * c) + c * (q[2] * a + q[3] * c) <= chroma * chroma;
}

/** A Gaussian of YCbCr colours (full covariance). */
export interface Gauss3 {
  mean: [number, number, number];
  inv: number[];
  /** log of the prior weight minus half the log-determinant */
  bias: number;
}

function gauss3(samples: Float32Array, idx: number[], weight: number): Gauss3 | undefined {
  if (idx.length < 10) return undefined;
  const m = [0, 0, 0];
  for (const k of idx) for (let c = 0; c < 3; c++) m[c]! += samples[3 * k + c]!;
  for (let c = 0; c < 3; c++) m[c]! /= idx.length;
  const cov = new Array<number>(9).fill(0);
  for (const k of idx) {
    for (let a = 0; a < 3; a++) for (let b = 0; b < 3; b++) cov[a * 3 + b]! += (samples[3 * k + a]! - m[a]!) * (samples[3 * k + b]! - m[b]!);
  }
  for (let k = 0; k < 9; k++) cov[k] = cov[k]! / idx.length + (k % 4 === 0 ? 9 : 0);
  const [a0, a1, a2, a3, a4, a5, a6, a7, a8] = cov as [number, number, number, number, number, number, number, number, number];
  const c0 = a4 * a8 - a5 * a7, c1 = a5 * a6 - a3 * a8, c2 = a3 * a7 - a4 * a6;
  const det = a0 * c0 + a1 * c1 + a2 * c2;
  if (!(det > 0)) return undefined;
  const inv = [c0 / det, (a2 * a7 - a1 * a8) / det, (a1 * a5 - a2 * a4) / det, c1 / det, (a0 * a8 - a2 * a6) / det, (a2 * a3 - a0 * a5) / det, c2 / det, (a1 * a6 - a0 * a7) / det, (a0 * a4 - a1 * a3) / det];
  return { mean: [m[0]!, m[1]!, m[2]!], inv, bias: Math.log(weight) - 0.5 * Math.log(det) };
}

function logLik(g: Gauss3, y: number, cb: number, cr: number): number {
  const d0 = y - g.mean[0], d1 = cb - g.mean[1], d2 = cr - g.mean[2];
  const q = g.inv;
  return g.bias - 0.5 * (d0 * (q[0]! * d0 + q[1]! * d1 + q[2]! * d2) + d1 * (q[3]! * d0 + q[4]! * d1 + q[5]! * d2) + d2 * (q[6]! * d0 + q[7]! * d1 + q[8]! * d2));
}

function samplesOf(image: RgbImage, m: FaceMask, max = 800): Float32Array {
  let n = 0;
  for (let k = 0; k < m.data.length; k++) n += m.data[k]!;
  const step = Math.max(1, Math.floor(n / max));
  const out = new Float32Array(Math.ceil(n / step) * 3);
  let seen = 0, t = 0;
  for (let j = 0; j < m.h; j++) {
    for (let i = 0; i < m.w; i++) {
      if (!m.data[j * m.w + i]) continue;
      if (seen++ % step) continue;
      const o = ((m.y + j) * image.width + m.x + i) * 3;
      const r = image.data[o]!, g = image.data[o + 1]!, b = image.data[o + 2]!;
      // ycbcr(), inline: no array per pixel
      out[t++] = 0.299 * r + 0.587 * g + 0.114 * b;
      out[t++] = 128 - 0.168736 * r - 0.331264 * g + 0.5 * b;
      out[t++] = 128 + 0.5 * r - 0.418688 * g - 0.081312 * b;
    }
  }
  return out.subarray(0, t);
}

/**
 * Skin against its surroundings: one Gaussian (YCbCr, full covariance) for the face's skin sample, k for the
 * surroundings' sample (k-means, k = 3: hair, background, anything else), equal prior for skin and
 * surroundings. `isSkin` tells whether a colour is likelier skin.
 */
export interface ContrastModel {
  isSkin(r: number, g: number, b: number): boolean;
  /** log-likelihood of skin minus that of the likeliest surroundings cluster, of a YCbCr colour */
  score(y: number, cb: number, cr: number): number;
  /** the Gaussians: the skin's, and one per surroundings cluster (the learned classifier's features use them) */
  readonly skin: Gauss3;
  readonly others: readonly Gauss3[];
}

export function contrastModel(image: RgbImage, skinSampleMask: FaceMask, surroundSample: FaceMask, k = 3): ContrastModel | undefined {
  const skin = samplesOf(image, skinSampleMask);
  const ns = skin.length / 3;
  const skinG = gauss3(skin, Array.from({ length: ns }, (_, i) => i), 0.5);
  const other = samplesOf(image, surroundSample);
  const no = other.length / 3;
  if (!skinG || no < 30) return undefined;
  // k-means on the surroundings, initialised at luma quantiles (deterministic)
  const hy = new Uint32Array(256);
  for (let i = 0; i < no; i++) hy[Math.min(255, Math.max(0, Math.round(other[3 * i]!)))]!++;
  const centres = Array.from({ length: k }, (_, c) => {
    // the sample nearest the luma quantile (c + 0.5) / k
    let acc = 0, level = 255;
    for (let v = 0; v < 256; v++) {
      acc += hy[v]!;
      if (acc >= ((c + 0.5) / k) * no) { level = v; break; }
    }
    let best = 0, bd = Infinity;
    for (let i = 0; i < no; i++) {
      const d = Math.abs(other[3 * i]! - level);
      if (d < bd) { bd = d; best = i; }
    }
    return [other[3 * best]!, other[3 * best + 1]!, other[3 * best + 2]!];
  });
  const assign = new Int32Array(no);
  // centres flat (cen[3c + channel]); sums per cluster in one pass, each in the samples' order
  const cen = new Float64Array(3 * k);
  centres.forEach((m, c) => { cen[3 * c] = m[0]!; cen[3 * c + 1] = m[1]!; cen[3 * c + 2] = m[2]!; });
  const sum = new Float64Array(3 * k), count = new Int32Array(k);
  for (let it = 0; it < 5; it++) {
    sum.fill(0);
    count.fill(0);
    for (let i = 0; i < no; i++) {
      const a0 = other[3 * i]!, a1 = other[3 * i + 1]!, a2 = other[3 * i + 2]!;
      let best = 0, bd = Infinity;
      for (let c = 0; c < k; c++) {
        const e0 = a0 - cen[3 * c]!, e1 = a1 - cen[3 * c + 1]!, e2 = a2 - cen[3 * c + 2]!;
        const d = e0 * e0 + e1 * e1 + e2 * e2;
        if (d < bd) { bd = d; best = c; }
      }
      assign[i] = best;
      sum[3 * best]! += a0; sum[3 * best + 1]! += a1; sum[3 * best + 2]! += a2;
      count[best]!++;
    }
    for (let c = 0; c < k; c++) {
      const n = count[c]!;
      if (n > 0) { cen[3 * c] = sum[3 * c]! / n; cen[3 * c + 1] = sum[3 * c + 1]! / n; cen[3 * c + 2] = sum[3 * c + 2]! / n; }
    }
  }
  const others: Gauss3[] = [];
  for (let c = 0; c < k; c++) {
    const idx: number[] = [];
    for (let i = 0; i < no; i++) if (assign[i] === c) idx.push(i);
    const g = gauss3(other, idx, (0.5 * idx.length) / no);
    if (g) others.push(g);
  }
  if (others.length === 0) return undefined;
  return {
    skin: skinG,
    others,
    isSkin(r, g, b) {
      const [y, cb, cr] = ycbcr(r, g, b);
      const ls = logLik(skinG, y, cb, cr);
      for (const o of others) if (logLik(o, y, cb, cr) > ls) return false;
      return true;
    },
    score(y, cb, cr) {
      let lo = -Infinity;
      for (const o of others) lo = Math.max(lo, logLik(o, y, cb, cr));
      return logLik(skinG, y, cb, cr) - lo;
    },
  };
}

/**
 * Grows a face mask into the skin around it: the pixels of `region` that look like this face's skin and
 * connect to `core` through such pixels (4-connected flood fill seeded with the core).
 */
export function growSkin(image: RgbImage, core: FaceMask, region: FaceMask, skin: SkinModel, options: GrowOptions = {}, contrast?: ContrastModel): FaceMask {
  const all = unionMasks([core, region], image.width, image.height);
  const { x: rx, y: ry, w, h } = all;
  if (w === 0) return core;
  const chroma = options.chroma ?? 3;
  const luma = options.luma ?? [0.35, 1.5];
  const out = new Uint8Array(w * h);
  // 0: not looked at yet, 1: skin, 2: not skin or outside the region; colours are judged only where the flood
  // reaches, which is a fraction of the region
  const seen = new Uint8Array(w * h);
  const ok = (k: number): boolean => {
    if (seen[k]) return seen[k] === 1;
    const i = k % w, j = (k - i) / w;
    const px = rx + i, py = ry + j;
    const inRegion = px >= region.x && py >= region.y && px < region.x + region.w && py < region.y + region.h && region.data[(py - region.y) * region.w + (px - region.x)];
    let yes = false;
    if (inRegion) {
      const o = (py * image.width + px) * 3;
      const r = image.data[o]!, g = image.data[o + 1]!, b = image.data[o + 2]!;
      yes = isSkin(skin, r, g, b, chroma, luma) && (!contrast || contrast.isSkin(r, g, b));
    }
    seen[k] = yes ? 1 : 2;
    return yes;
  };
  const stack: number[] = [];
  for (let j = 0; j < core.h; j++) {
    for (let i = 0; i < core.w; i++) {
      if (!core.data[j * core.w + i]) continue;
      const k = (core.y + j - ry) * w + (core.x + i - rx);
      out[k] = 1;
      stack.push(k);
    }
  }
  flood4(out, w, h, stack, ok);
  return trimMask({ width: image.width, height: image.height, x: rx, y: ry, w, h, data: out });
}

/**
 * Where skin may be found around a face outline (a polygon with its jaw line): the outline widened at the
 * sides (ears), raised at the top (forehead up to the hairline), and a band under the jaw (neck), in the
 * face's own frame (x along the eye line, y down).
 */
export function growRegion(outline: Point[], eyeAngle: number, width: number, height: number, options: GrowOptions = {}): FaceMask {
  const fo = options.forehead ?? 0.3;
  const sd = options.sides ?? 0.12;
  const nk = options.neck ?? 0.6;
  const nw = options.neckWidth ?? 0.75;
  const c = Math.cos(eyeAngle), s = Math.sin(eyeAngle);
  const toF = (p: Point): Point => ({ x: c * p.x + s * p.y, y: -s * p.x + c * p.y });
  const toI = (p: Point): Point => ({ x: c * p.x - s * p.y, y: s * p.x + c * p.y });
  const f = outline.map(toF);
  let x1 = Infinity, x2 = -Infinity, y1 = Infinity, y2 = -Infinity;
  for (const p of f) { x1 = Math.min(x1, p.x); x2 = Math.max(x2, p.x); y1 = Math.min(y1, p.y); y2 = Math.max(y2, p.y); }
  const fw = x2 - x1, fh = y2 - y1;
  const cx = (x1 + x2) / 2;
  const cy = (y1 + y2) / 2;
  // widen and raise: points above the centre move up by up to `fo` * height, all move out by `sd` * width
  const grown = f.map((p) => {
    const up = p.y < cy ? ((cy - p.y) / (cy - y1)) * fo * fh : 0;
    const out = ((p.x - cx) / (fw / 2)) * sd * fw;
    return toI({ x: p.x + out, y: p.y - up });
  });
  const neck = [
    { x: cx - (nw * fw) / 2, y: cy },
    { x: cx + (nw * fw) / 2, y: cy },
    { x: cx + (nw * fw) / 2, y: y2 + nk * fh },
    { x: cx - (nw * fw) / 2, y: y2 + nk * fh },
  ].map(toI);
  return unionMasks([rasterizePolygon(grown, width, height), rasterizePolygon(neck, width, height)], width, height);
}

// ------------------------------------------------------------------------------------------ segmenter

export interface FaceGeometry {
  /** 68 iBUG landmarks, image pixels (the engine's Face.landmarks) */
  landmarks: Point[];
}

export interface FaceSegment {
  /** the method that made the outline ('landmarks' also when the mesh found no face in its crop) */
  method: SegmentMethod;
  /** the face outline (closed polygon, image pixels); the neck, when asked for, is in `mask` only */
  polygon: Point[];
  /** the face (and neck, when asked for) at the frame's resolution */
  mask: FaceMask;
  /** the 468-point mesh, for the mesh method */
  mesh?: Point3[];
  /** the mesh model's face-presence probability */
  meshScore?: number;
}

export interface SegmentOptions {
  /** grow the outline into the skin around it: forehead, ears, neck (default false) */
  grow?: boolean | GrowOptions;
  /** landmarks method: see LandmarkPolygonOptions */
  foreheadRaise?: number;
}

/**
 * The landmarks method as a pure function (no model): polygon, mask and, when asked, the neck.
 */
export function segmentFromLandmarks(image: RgbImage, face: FaceGeometry, options: SegmentOptions = {}): FaceSegment {
  const polygon = landmarkPolygon(face.landmarks, options.foreheadRaise === undefined ? {} : { foreheadRaise: options.foreheadRaise });
  const mask = options.grow ? grownMask(image, polygon, face.landmarks, options.grow) : rasterizePolygon(polygon, image.width, image.height);
  return { method: 'landmarks', polygon, mask };
}

/** The mesh method from an already computed mesh, as a pure function. */
export function segmentFromMesh(image: RgbImage, face: FaceGeometry, mesh: MeshResult, options: SegmentOptions = {}): FaceSegment {
  const polygon = meshOutline(mesh.points);
  const mask = options.grow ? grownMask(image, polygon, face.landmarks, options.grow) : rasterizePolygon(polygon, image.width, image.height);
  return { method: 'mesh', polygon, mask, mesh: mesh.points, meshScore: mesh.faceScore };
}

/** Skin sample: the cheeks and nose, between the eyes' and the mouth's lines (68 landmarks 1..15, 27..35). */
export function skinSample(image: RgbImage, landmarks68: Point[]): FaceMask {
  // polygon: left cheek (1..4) -> nose bottom -> right cheek (12..15) -> up under the eyes
  const L = landmarks68;
  const poly = [L[1]!, L[2]!, L[3]!, L[48]!, L[33]!, L[54]!, L[13]!, L[14]!, L[15]!, L[45]!, L[42]!, L[27]!, L[39]!, L[36]!];
  // pull it 15% towards the nose so no background or hair at the face's edge gets in
  const c = L[30]!;
  return rasterizePolygon(poly.map((p) => ({ x: c.x + (p.x - c.x) * 0.85, y: c.y + (p.y - c.y) * 0.85 })), image.width, image.height);
}

/**
 * Above this face size (the outline's larger side, pixels), growing runs on a copy of the face's
 * neighbourhood scaled down to it, and the mask is scaled back up: the per-pixel work of growing (skin
 * models, trimming, flood) would otherwise grow with the face's area while the embedder's cost is fixed
 * (a 150 px chip). Measured: on LFW faces (~100 px) mesh+grow costs 0.28 of the embedder; enlarged 3x,
 * 1.17 before this cap (BENCHMARKS.md, Segmentation, Cost).
 */
export const GROW_MAX_FACE_PX = 128;

/**
 * Where growing happens: the frame itself, or (a face larger than GROW_MAX_FACE_PX) a copy of the face's
 * neighbourhood scaled so that the face is GROW_MAX_FACE_PX; `k` is space pixels per frame pixel and
 * (ox, oy) the frame pixel at the copy's origin. `faceflow train seg` fits the learned classifier in the same
 * space, so that it sees faces at the size it will be used at.
 */
export interface GrowthSpace {
  image: RgbImage;
  outline: Point[];
  landmarks68: Point[];
  k: number;
  ox: number;
  oy: number;
}

export function growthSpace(image: RgbImage, outline: Point[], landmarks68: Point[], maxFace = GROW_MAX_FACE_PX): GrowthSpace {
  if (!(maxFace >= 16)) throw new FaceflowError('INVALID_ARGUMENT', `growthSpace: maxFace must be >= 16 px, got ${maxFace}`);
  let x1 = Infinity, x2 = -Infinity, y1 = Infinity, y2 = -Infinity;
  for (const p of outline) { x1 = Math.min(x1, p.x); x2 = Math.max(x2, p.x); y1 = Math.min(y1, p.y); y2 = Math.max(y2, p.y); }
  const face = Math.max(x2 - x1, y2 - y1);
  if (!(face > maxFace)) return { image, outline, landmarks68, k: 1, ox: 0, oy: 0 };
  // the neighbourhood growing looks at: the surround ring reaches 0.9 face widths from the centre, the
  // neck 1.1 face heights below it; 1.25 leaves room for a tilted head
  const half = 1.25 * face;
  const cx = (x1 + x2) / 2, cy = (y1 + y2) / 2;
  const ox = Math.max(0, Math.floor(cx - half)), oy = Math.max(0, Math.floor(cy - half));
  const ex = Math.min(image.width, Math.ceil(cx + half)), ey = Math.min(image.height, Math.ceil(cy + half));
  const k = maxFace / face; // small px per frame px
  const sw = Math.max(1, Math.round((ex - ox) * k)), sh = Math.max(1, Math.round((ey - oy) * k));
  // plain bilinear (no sub-sample averaging): the skin models want colours, not an anti-aliased picture
  const sx = (ex - ox) / sw, sy = (ey - oy) / sh;
  const small: RgbImage = { width: sw, height: sh, data: warpAffine(image, [sx, 0, ox + 0.5 * sx - 0.5, 0, sy, oy + 0.5 * sy - 0.5], sw, sh, 1) };
  const toSmall = (p: Point): Point => ({ x: (p.x - ox) * k, y: (p.y - oy) * k });
  return { image: small, outline: outline.map(toSmall), landmarks68: landmarks68.map(toSmall), k, ox, oy };
}

/**
 * The outline grown (see GrowOptions), at the frame's resolution. The outline's own mask at the frame's
 * resolution is only rasterised where it is used: growing in the frame itself, or as what is returned when
 * growing cannot run (no 68 landmarks, an empty outline, nothing grown).
 */
function grownMask(image: RgbImage, outline: Point[], landmarks68: Point[], grow: boolean | GrowOptions): FaceMask {
  const core = (): FaceMask => rasterizePolygon(outline, image.width, image.height);
  if (landmarks68.length !== 68) return core();
  const learned = typeof grow === 'object' && grow.classifier === 'learned';
  const space = growthSpace(image, outline, landmarks68, learned ? LEARNED_GROW_MAX_FACE_PX : GROW_MAX_FACE_PX);
  if (space.k === 1) {
    const c = core();
    return c.w === 0 ? c : grownMaskAt(image, c, outline, landmarks68, grow);
  }
  const { k, ox, oy } = space;
  const sw = space.image.width, sh = space.image.height;
  const small = rasterizePolygon(space.outline, sw, sh);
  // the outline covers no pixel centre even at the frame's resolution: nothing to grow from
  if (small.w === 0 && core().w === 0) return core();
  const m = grownMaskAt(space.image, small, space.outline, space.landmarks68, grow);
  if (m.w === 0) return core();
  // back to the frame, nearest neighbour: each frame pixel takes the small pixel its centre falls in. The
  // small column of every frame column is worked out once; a frame row that falls in the same small row as
  // the one above is a copy of it; only the frame rows and columns that fall inside m are allocated
  const smallCol = (fx: number): number => Math.floor((fx + 0.5 - ox) * k) - m.x;
  const smallRow = (fy: number): number => Math.floor((fy + 0.5 - oy) * k) - m.y;
  let fx0 = Math.max(0, Math.floor(ox + m.x / k)), fy0 = Math.max(0, Math.floor(oy + m.y / k));
  let fx1 = Math.min(image.width, Math.ceil(ox + (m.x + m.w) / k)), fy1 = Math.min(image.height, Math.ceil(oy + (m.y + m.h) / k));
  while (fx0 < fx1 && smallCol(fx0) < 0) fx0++;
  while (fx1 > fx0 && smallCol(fx1 - 1) >= m.w) fx1--;
  while (fy0 < fy1 && smallRow(fy0) < 0) fy0++;
  while (fy1 > fy0 && smallRow(fy1 - 1) >= m.h) fy1--;
  const w = Math.max(0, fx1 - fx0), h = Math.max(0, fy1 - fy0);
  const data = new Uint8Array(w * h);
  const col = new Int32Array(w);
  for (let i = 0; i < w; i++) col[i] = smallCol(fx0 + i);
  let prev = -1;
  for (let j = 0; j < h; j++) {
    const sy = smallRow(fy0 + j);
    if (sy === prev) { data.copyWithin(j * w, (j - 1) * w, j * w); continue; }
    prev = sy;
    const src = sy * m.w, dst = j * w;
    for (let i = 0; i < w; i++) if (m.data[src + col[i]!]) data[dst + i] = 1;
  }
  return trimMask({ width: image.width, height: image.height, x: fx0, y: fy0, w, h, data });
}

/**
 * The learned classifier grows on a copy with the face at most this size (see growthSpace): its per-pixel
 * work (features and trees at every pixel the flood reaches) is several times the hand rules', and at LFW's
 * ~110 px faces it cost 0.74 of the embedder at full size. `faceflow train seg` fits it at this size too.
 */
export const LEARNED_GROW_MAX_FACE_PX = 64;

/**
 * Where the learned classifier may put skin, around the outline (fractions as in GrowOptions): more room than
 * the hand rules' region, at the neck above all (in LFW Part Labels the neck often runs to the picture's
 * bottom edge, and it is wider than the rules' band), since the trees, not the region, bound the mask.
 */
export const LEARNED_REGION: Readonly<Required<Pick<GrowOptions, 'forehead' | 'sides' | 'neck' | 'neckWidth'>>> = { forehead: 0.35, sides: 0.2, neck: 0.9, neckWidth: 1 };

/**
 * The learned classifier's feature field of one face (in the space the caller grows in; see growthSpace):
 * undefined when this face's skin or surroundings cannot be sampled (growing then falls back as the other
 * classifiers do). Exported for `faceflow train seg`, which fits the trees on exactly these features.
 */
export function learnedSkinField(image: RgbImage, core: FaceMask, outline: Point[], landmarks68: Point[]): SkinField | undefined {
  if (core.w === 0 || landmarks68.length !== 68) return undefined;
  const sample = skinSample(image, landmarks68);
  const skin = skinModel(image, sample);
  if (!skin) return undefined;
  const angle = eyeLineAngle68(landmarks68);
  const contrast = contrastModel(image, sample, surroundRing(outline, angle, landmarks68, image.width, image.height));
  if (!contrast) return undefined;
  const region = unionMasks([core, growRegion(outline, angle, image.width, image.height, LEARNED_REGION)], image.width, image.height);
  // the seed: eyes, nose and mouth (landmarks 27..67), always face, whatever their colour
  const seed = rasterizePolygon(convexHull(landmarks68.slice(27)), image.width, image.height);
  return skinField(image, { outline, landmarks68, region, seed }, { skin, contrast: { skin: contrast.skin, others: contrast.others } });
}

function grownMaskAt(image: RgbImage, core: FaceMask, outline: Point[], landmarks68: Point[], grow: boolean | GrowOptions): FaceMask {
  if (core.w === 0) return core;
  const opts = typeof grow === 'object' ? grow : {};
  const classifier = opts.classifier ?? 'contrast';
  if (!GROW_CLASSIFIERS.includes(classifier)) throw new FaceflowError('INVALID_ARGUMENT', `grow classifier must be one of ${GROW_CLASSIFIERS.join(', ')}, got "${String(classifier)}"`);
  if (classifier === 'learned') {
    if (!opts.skinClassifier) throw new FaceflowError('INVALID_ARGUMENT', "the 'learned' grow classifier needs skinClassifier (loadSkinClassifier(), or use FaceSegmenter, which loads it)");
    const field = learnedSkinField(image, core, outline, landmarks68);
    // no skin or surroundings sample: the hand rules' own fallback (bounds around whatever skin there is)
    if (field) return learnedMask(field, opts.skinClassifier);
  }
  const skin = skinModel(image, skinSample(image, landmarks68));
  if (!skin) return core;
  const angle = eyeLineAngle68(landmarks68);
  const region = growRegion(outline, angle, image.width, image.height, opts);
  if (classifier !== 'contrast') return growSkin(image, core, region, skin, opts);
  const sample = skinSample(image, landmarks68);
  const contrast = contrastModel(image, sample, surroundRing(outline, angle, landmarks68, image.width, image.height));
  if (!contrast) return growSkin(image, core, region, skin, opts);
  const trimmed = trimBand(image, core, outline, contrast, opts.trimBand ?? 0.1);
  return growSkin(image, trimmed, region, skin, opts, contrast);
}

/** Scales a polygon about its centroid, in the frame rotated by `angle`, by (sx, sy). */
function scalePolygon(poly: Point[], angle: number, sx: number, sy: number): Point[] {
  const c = Math.cos(angle), s = Math.sin(angle);
  const m = mean(poly);
  return poly.map((p) => {
    const u = c * (p.x - m.x) + s * (p.y - m.y);
    const v = -s * (p.x - m.x) + c * (p.y - m.y);
    return { x: m.x + c * u * sx - s * v * sy, y: m.y + s * u * sx + c * v * sy };
  });
}

/**
 * Where the surroundings are sampled: a ring between the outline scaled by 1.35 and by 1.8 (about its
 * centre, along the face's axes), above the mouth: hair and background, not the neck or the clothes.
 */
export function surroundRing(outline: Point[], angle: number, landmarks68: Point[], width: number, height: number): FaceMask {
  const outer = rasterizePolygon(scalePolygon(outline, angle, 1.8, 1.6), width, height);
  const inner = rasterizePolygon(scalePolygon(outline, angle, 1.35, 1.3), width, height);
  const mouth = landmarks68[62]!;
  const c = Math.cos(angle), s = Math.sin(angle);
  const mouthV = -s * mouth.x + c * mouth.y;
  const data = new Uint8Array(outer.w * outer.h);
  for (let j = 0; j < outer.h; j++) {
    for (let i = 0; i < outer.w; i++) {
      if (!outer.data[j * outer.w + i]) continue;
      const x = outer.x + i, y = outer.y + j;
      if (-s * x + c * y > mouthV) continue;
      const ii = x - inner.x, jj = y - inner.y;
      if (ii >= 0 && jj >= 0 && ii < inner.w && jj < inner.h && inner.data[jj * inner.w + ii]) continue;
      data[j * outer.w + i] = 1;
    }
  }
  return trimMask({ ...outer, data });
}

/**
 * Removes from the outline's outer band (pixels within `band` x its width of the edge) those that look like
 * the surroundings and connect to the outside through such pixels: hair over the forehead or temples, a beard
 * at the jaw. Eyes, brows and lips are further in than the band.
 */
export function trimBand(image: RgbImage, core: FaceMask, outline: Point[], contrast: ContrastModel, band: number): FaceMask {
  if (!(band > 0)) return core;
  let x1 = Infinity, x2 = -Infinity;
  for (const p of outline) { x1 = Math.min(x1, p.x); x2 = Math.max(x2, p.x); }
  const r = Math.max(1, Math.round((x2 - x1) * band));
  // distance to the outside, up to r, by repeated 4-neighbour erosion layers
  const { w, h } = core;
  const depth = new Uint8Array(w * h);
  const out = new Uint8Array(core.data);
  let frontier: number[] = [];
  for (let j = 0; j < h; j++) {
    for (let i = 0; i < w; i++) {
      const k = j * w + i;
      if (!core.data[k]) continue;
      const edge = i === 0 || j === 0 || i === w - 1 || j === h - 1 || !core.data[k - 1] || !core.data[k + 1] || !core.data[k - w] || !core.data[k + w];
      if (edge) { depth[k] = 1; frontier.push(k); }
    }
  }
  const isOther = (k: number): boolean => {
    const i = k % w, j = (k - i) / w;
    const o = ((core.y + j) * image.width + core.x + i) * 3;
    return !contrast.isSkin(image.data[o]!, image.data[o + 1]!, image.data[o + 2]!);
  };
  // peel: a pixel goes when it looks like the surroundings and touches the outside or a peeled pixel
  let queue = frontier.filter(isOther);
  for (const k of queue) out[k] = 0;
  frontier = [];
  while (queue.length > 0) {
    const next: number[] = [];
    for (const k of queue) {
      const i = k % w;
      for (const kk of [i > 0 ? k - 1 : -1, i + 1 < w ? k + 1 : -1, k - w, k + w]) {
        if (kk < 0 || kk >= w * h || !out[kk] || depth[kk] === 255) continue;
        depth[kk] = 255;
        if (bandDistance(kk, core, w) > r) continue;
        if (isOther(kk)) {
          out[kk] = 0;
          next.push(kk);
        }
      }
    }
    queue = next;
  }
  return trimMask({ ...core, data: out });
}

/** Distance from pixel k to the nearest outside pixel along the 4 axis directions (bounded by the rectangle). */
function bandDistance(k: number, m: FaceMask, w: number): number {
  const i = k % w, j = (k - i) / w;
  let d = Infinity;
  for (let t = 1; t <= Math.max(m.w, m.h); t++) {
    const l = i - t >= 0 ? m.data[j * w + i - t] : 0;
    const rr = i + t < w ? m.data[j * w + i + t] : 0;
    const u = j - t >= 0 ? m.data[(j - t) * w + i] : 0;
    const dn = j + t < m.h ? m.data[(j + t) * w + i] : 0;
    if (!l || !rr || !u || !dn) { d = t; break; }
  }
  return d;
}

export interface FaceSegmenterConfig {
  /** default 'mesh' */
  method?: SegmentMethod;
  /** facemesh.json, required for the mesh method (registry entry `facemesh`) */
  meshModelPath?: string;
  /**
   * a second mesh pass on MediaPipe's tracking ROI from the first mesh (default false: on LFW Part Labels it
   * moved mean IoU by +0.003 for twice the mesh's cost)
   */
  refine?: boolean;
  /** crops per mesh call */
  batchSize?: number;
  /** defaults for run() */
  options?: SegmentOptions;
  /** under this mesh face-presence score the landmarks method is used instead (default 0.5) */
  minMeshScore?: number;
  /**
   * the trees for grow classifier 'learned': a loaded classifier, or a file (default: the bundled
   * packages/engine/models/skin-classifier.json)
   */
  skinClassifier?: SkinClassifier | string;
}

/** Segments faces the engine found. The only TF.js model it may hold is the face mesh (the skin trees are plain JS). */
export class FaceSegmenter {
  private disposed = false;
  private constructor(
    private readonly mesh: FaceMesh | undefined,
    readonly method: SegmentMethod,
    private readonly refine: boolean,
    private readonly defaults: SegmentOptions,
    private readonly minMeshScore: number,
    /** the learned grow classifier's trees, given to growing whenever the options ask for 'learned' without their own */
    readonly skinClassifier: SkinClassifier,
  ) {}

  static async load(config: FaceSegmenterConfig = {}): Promise<FaceSegmenter> {
    const method = config.method ?? 'mesh';
    if (method !== 'mesh' && method !== 'landmarks') throw new FaceflowError('INVALID_CONFIG', `segmentation method must be mesh or landmarks, got "${String(method)}"`);
    // read before the mesh loads, so a bad file fails fast and leaves nothing to dispose
    const skin = typeof config.skinClassifier === 'object' ? config.skinClassifier : await loadSkinClassifier(config.skinClassifier);
    let mesh: FaceMesh | undefined;
    if (method === 'mesh') {
      if (!config.meshModelPath) throw new FaceflowError('INVALID_CONFIG', 'the mesh segmentation method needs meshModelPath (registry entry "facemesh")');
      mesh = await FaceMesh.load({ modelPath: config.meshModelPath, ...(config.batchSize ? { batchSize: config.batchSize } : {}) });
    }
    return new FaceSegmenter(mesh, method, config.refine ?? false, config.options ?? {}, config.minMeshScore ?? 0.5, skin);
  }

  /** One segment per face, per image; faces[i] are the faces of images[i]. */
  async run(images: RgbImage[], faces: FaceGeometry[][], options: SegmentOptions = {}): Promise<FaceSegment[][]> {
    if (this.disposed) throw new FaceflowError('INTERNAL', 'segmenter used after dispose()');
    if (images.length !== faces.length) throw new FaceflowError('INVALID_ARGUMENT', `segmenter got ${images.length} images and ${faces.length} face lists`);
    const given = { ...this.defaults, ...options };
    // the grow classifier, unless the options name one: 'learned' on mesh outlines (it was fitted and measured
    // there: on LFW Part Labels images it was not fitted on, IoU 0.805-0.819 / precision 0.957-0.968 (two
    // half-splits) vs contrast's 0.768-0.780 / 0.950-0.956; the shipped trees, fitted on all 300, 0.813 / 0.961
    // by 5-fold cross-validation; BENCHMARKS.md),
    // 'contrast' on the 68-landmark outline (the trees were never measured on it)
    const withClassifier = (fallback: GrowClassifier): SegmentOptions => {
      if (!given.grow) return given;
      const g = given.grow === true ? {} : given.grow;
      const classifier = g.classifier ?? fallback;
      return { ...given, grow: { ...g, classifier, ...(classifier === 'learned' && !g.skinClassifier ? { skinClassifier: this.skinClassifier } : {}) } };
    };
    if (this.method === 'landmarks' || !this.mesh) {
      const opts = withClassifier('contrast');
      return images.map((img, i) => faces[i]!.map((f) => segmentFromLandmarks(img, f, opts)));
    }
    const opts = withClassifier('learned');
    const flat: Array<{ image: RgbImage; face: FaceGeometry; i: number }> = [];
    faces.forEach((fs, i) => fs.forEach((face) => flat.push({ image: images[i]!, face, i })));
    let meshes = await this.mesh.run(flat.map((f) => ({ image: f.image, roi: meshRoiFromLandmarks(f.face.landmarks) })));
    if (this.refine) meshes = await this.mesh.run(meshes.map((m, k) => ({ image: flat[k]!.image, roi: meshRoiFromMesh(m.points) })));
    const out: FaceSegment[][] = images.map(() => []);
    flat.forEach((f, k) => {
      const m = meshes[k]!;
      if (m.faceScore >= this.minMeshScore) out[f.i]!.push(segmentFromMesh(f.image, f.face, m, opts));
      // the mesh says this crop holds no face (a false detection, or a face the mesh cannot read): its points
      // mean nothing, so the outline comes from the 68 landmarks; meshScore tells the caller
      else out[f.i]!.push({ ...segmentFromLandmarks(f.image, f.face, opts), mesh: m.points, meshScore: m.faceScore });
    });
    return out;
  }

  dispose(): void {
    this.mesh?.dispose();
    this.disposed = true;
  }
}
