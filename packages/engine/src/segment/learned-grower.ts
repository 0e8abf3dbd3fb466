/**
 * The learned grower (`classifier: 'learned'` in GrowOptions): the trees of a skin classifier
 * (skin-classifier.ts) decide every pixel around the inner face from per-pixel features that put together
 * where the pixel is relative to this face's geometry (eye line, chin, jaw, outline) and how its colour
 * compares with this face's own skin and with the colours around the head (colour.ts). The hand-made rules of
 * the contrast grower judge colour alone inside a fixed region; a neck in shadow is darker than the cheeks
 * but sits right under the jaw, and a beard can be skin-coloured at a distance but sits on the jaw line with
 * a strong gradient: position and colour together is what the trees learn.
 *
 * This module holds the feature field (features of any pixel of a face's candidate region, computed on
 * demand: the flood fill asks only where it reaches), the mask rule (flood from the inner face through
 * accepted pixels, then fill holes) and the grower. `faceflow train seg` fits the trees on exactly these
 * features (learnedSkinField), in the same growth space.
 */
import { FaceflowError } from '@faceflow/shared';
import type { Point, RgbImage } from '../image/geometry.js';
import { type FaceMask, flood4, rasterizePolygon, trimMask, unionMasks } from './mask.js';
import { eyeLineAngle68 } from '../models/facemesh.js';
import { convexHull } from './outline.js';
import { contrastModel, skinModel, skinSample, surroundRing } from './colour.js';
import { type GrowOptions, growRegion } from './growth.js';
import { SKIN_FEATURE_COUNT, type SkinClassifier, skinDecision } from './skin-classifier.js';
import { contrastGrower } from './contrast-grower.js';
import type { Grower } from './grower.js';

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

/** A Gaussian of YCbCr colours as colour.ts's contrast model keeps it. */
export interface ColourGaussian {
  /** mean (Y, Cb, Cr) */
  readonly mean: readonly number[];
  /** inverse covariance, 3 x 3 row-major */
  readonly inv: readonly number[];
  /** log of the prior weight minus half the log-determinant */
  readonly bias: number;
}

/** What the feature field needs from colour.ts's models (kept structural: the field takes any such numbers). */
export interface FieldColourModels {
  skin: { y: number; cb: number; cr: number; inv: [number, number, number, number] };
  /**
   * the contrast model's Gaussians (colour.ts contrastModel): this face's skin, and the clusters of the
   * colours around the head; feature 'contrast' is the skin's log-likelihood minus the best cluster's
   */
  contrast: { skin: ColourGaussian; others: readonly ColourGaussian[] };
}

/**
 * The numbers a field's features are computed from (see skinField): plain values and typed arrays, so that
 * the per-pixel work is one function of them (fieldFeatures) and no closure per face.
 */
export interface SkinFieldData {
  readonly data: Uint8Array;
  readonly W: number;
  readonly H: number;
  /** the region's box in the image */
  readonly bx: number;
  readonly by: number;
  readonly bw: number;
  /** the face's frame: origin between the eyes, across (ax, ay), down (dx, dy), unit eye line to chin */
  readonly ox: number;
  readonly oy: number;
  readonly ax: number;
  readonly ay: number;
  readonly dx: number;
  readonly dy: number;
  readonly unit: number;
  /** the jaw curve's y per JAW_BINS + 1 steps of x over [-2, 2], face units */
  readonly jaw: Float64Array;
  /** the outline's centroid and its radius per ANGLE_BINS directions */
  readonly cx: number;
  readonly cy: number;
  readonly radius: Float64Array;
  /** the skin chroma model */
  readonly skCb: number;
  readonly skCr: number;
  readonly q0: number;
  readonly q1: number;
  readonly q2: number;
  readonly q3: number;
  readonly invY: number;
  readonly faceLuma: number;
  /** the contrast Gaussians, GAUSS_STRIDE numbers each (mean 3, inverse 9, bias): the skin's first, then the others' */
  readonly gauss: Float64Array;
  readonly nGauss: number;
}

/**
 * The features of every pixel of a face's candidate region, on demand. Indices k are into the region's
 * bounding box (box.w * box.h, row-major).
 */
export interface SkinField {
  box: { x: number; y: number; w: number; h: number };
  width: number;
  height: number;
  /** 1 where the mask may go (inside the candidate region) */
  region: Uint8Array;
  /** 1 where the mask always goes (the inner face: eyes, nose, mouth) */
  seed: Uint8Array;
  /** writes pixel k's SKIN_FEATURE_COUNT features into out */
  features(k: number, out: Float32Array | Float64Array): void;
  /** what `features` computes from (skinField sets it; learnedMask then decides pixels without a closure call) */
  data?: SkinFieldData;
}

export interface FieldGeometry {
  /** the face outline (mesh hull or landmark polygon) */
  outline: Point[];
  landmarks68: Point[];
  /** where the mask may go: the outline and the growth region around it */
  region: FaceMask;
  /** where it always goes */
  seed: FaceMask;
}

const ANGLE_BINS = 72;
const JAW_BINS = 128;
const GAUSS_STRIDE = 13;

/** The skin field of one face. `region` and `seed` are frame masks of `image`. */
export function skinField(image: RgbImage, geom: FieldGeometry, colour: FieldColourModels): SkinField {
  const { outline, landmarks68: L, region, seed } = geom;
  if (L.length !== 68) throw new FaceflowError('INVALID_ARGUMENT', `skinField needs 68 landmarks, got ${L.length}`);
  if (outline.length < 3) throw new FaceflowError('INVALID_ARGUMENT', `skinField needs an outline of at least 3 points, got ${outline.length}`);
  const box = { x: region.x, y: region.y, w: region.w, h: region.h };
  const regionData = region.data;
  const seedData = new Uint8Array(box.w * box.h);
  for (let j = 0; j < seed.h; j++) {
    for (let i = 0; i < seed.w; i++) {
      if (!seed.data[j * seed.w + i]) continue;
      const bi = seed.x + i - box.x, bj = seed.y + j - box.y;
      if (bi >= 0 && bj >= 0 && bi < box.w && bj < box.h && regionData[bj * box.w + bi]) seedData[bj * box.w + bi] = 1;
    }
  }
  // the face's frame: origin between the eyes, x along the eye line, unit the eye line's distance to the chin
  let lx = 0, ly = 0, rx = 0, ry = 0;
  for (let i = 36; i < 42; i++) { lx += L[i]!.x / 6; ly += L[i]!.y / 6; }
  for (let i = 42; i < 48; i++) { rx += L[i]!.x / 6; ry += L[i]!.y / 6; }
  const len = Math.hypot(rx - lx, ry - ly) || 1;
  const ax = (rx - lx) / len, ay = (ry - ly) / len; // across
  const dx = -ay, dy = ax; // down
  const ox = (lx + rx) / 2, oy = (ly + ry) / 2;
  const chinV = (L[8]!.x - ox) * dx + (L[8]!.y - oy) * dy;
  const unit = Math.max(1, chinV);
  // the jaw curve y(x) in face units, sampled on a table over x in [-2, 2] (level beyond its ends)
  const jaw = L.slice(0, 17).map((p) => ({ u: ((p.x - ox) * ax + (p.y - oy) * ay) / unit, v: ((p.x - ox) * dx + (p.y - oy) * dy) / unit })).sort((a, b) => a.u - b.u);
  const jawTable = new Float64Array(JAW_BINS + 1);
  for (let b = 0; b <= JAW_BINS; b++) {
    const u = -2 + (4 * b) / JAW_BINS;
    let v: number;
    if (u <= jaw[0]!.u) v = jaw[0]!.v;
    else if (u >= jaw[jaw.length - 1]!.u) v = jaw[jaw.length - 1]!.v;
    else {
      v = jaw[jaw.length - 1]!.v;
      for (let t = 0; t + 1 < jaw.length; t++) {
        const a = jaw[t]!, c = jaw[t + 1]!;
        if (u >= a.u && u <= c.u) { v = c.u === a.u ? Math.max(a.v, c.v) : a.v + ((u - a.u) / (c.u - a.u)) * (c.v - a.v); break; }
      }
    }
    jawTable[b] = v;
  }
  // the outline's radius per direction from its centroid (ray against each edge; the largest hit, so a
  // slightly non-convex polygon still gives its outer boundary)
  let cx = 0, cy = 0;
  for (const p of outline) { cx += p.x / outline.length; cy += p.y / outline.length; }
  const radius = new Float64Array(ANGLE_BINS);
  for (let b = 0; b < ANGLE_BINS; b++) {
    const th = ((b + 0.5) / ANGLE_BINS) * 2 * Math.PI - Math.PI;
    const ux = Math.cos(th), uy = Math.sin(th);
    let best = 0;
    for (let e = 0; e < outline.length; e++) {
      const p = outline[e]!, q = outline[(e + 1) % outline.length]!;
      // solve c + s*u = p + r*(q - p)
      const ex = q.x - p.x, ey = q.y - p.y;
      const den = ux * ey - uy * ex;
      if (Math.abs(den) < 1e-12) continue;
      const wx = p.x - cx, wy = p.y - cy;
      const s = (wx * ey - wy * ex) / den;
      const r = (wx * uy - wy * ux) / den;
      if (s > 0 && r >= -1e-9 && r <= 1 + 1e-9 && s > best) best = s;
    }
    radius[b] = Math.max(1, best);
  }
  const sk = colour.skin;
  const gs = [colour.contrast.skin, ...colour.contrast.others];
  const gauss = new Float64Array(gs.length * GAUSS_STRIDE);
  gs.forEach((g, n) => {
    for (let c = 0; c < 3; c++) gauss[n * GAUSS_STRIDE + c] = g.mean[c]!;
    for (let c = 0; c < 9; c++) gauss[n * GAUSS_STRIDE + 3 + c] = g.inv[c]!;
    gauss[n * GAUSS_STRIDE + 12] = g.bias;
  });
  const P: SkinFieldData = {
    data: image.data, W: image.width, H: image.height, bx: box.x, by: box.y, bw: box.w,
    ox, oy, ax, ay, dx, dy, unit, jaw: jawTable, cx, cy, radius,
    skCb: sk.cb, skCr: sk.cr, q0: sk.inv[0], q1: sk.inv[1], q2: sk.inv[2], q3: sk.inv[3],
    invY: 1 / Math.max(1, sk.y), faceLuma: sk.y / 255, gauss, nGauss: gs.length,
  };
  return {
    box,
    width: image.width,
    height: image.height,
    region: regionData,
    seed: seedData,
    features: (k, out) => fieldFeatures(P, k, out),
    data: P,
  };
}

/** Log-likelihood of (y, cb, cr) under the n-th Gaussian of `g` (colour.ts logLik, the same arithmetic). */
function gaussLogLik(g: Float64Array, n: number, y: number, cb: number, cr: number): number {
  const o = n * GAUSS_STRIDE;
  const d0 = y - g[o]!, d1 = cb - g[o + 1]!, d2 = cr - g[o + 2]!;
  return g[o + 12]! - 0.5 * (d0 * (g[o + 3]! * d0 + g[o + 4]! * d1 + g[o + 5]! * d2) + d1 * (g[o + 6]! * d0 + g[o + 7]! * d1 + g[o + 8]! * d2) + d2 * (g[o + 9]! * d0 + g[o + 10]! * d1 + g[o + 11]! * d2));
}

/** Luma of the pixel at (x, y), clamped into the image. */
function lumaAt(P: SkinFieldData, x: number, y: number): number {
  const xx = x < 0 ? 0 : x >= P.W ? P.W - 1 : x, yy = y < 0 ? 0 : y >= P.H ? P.H - 1 : y;
  const o = (yy * P.W + xx) * 3;
  const d = P.data;
  return 0.299 * d[o]! + 0.587 * d[o + 1]! + 0.114 * d[o + 2]!;
}

/** Pixel k's features (k into the region's box), in SKIN_FEATURES order. */
export function fieldFeatures(P: SkinFieldData, k: number, out: Float32Array | Float64Array): void {
  const i = k % P.bw, j = (k - i) / P.bw;
  const px = P.bx + i, py = P.by + j;
  const rxp = px - P.ox, ryp = py - P.oy;
  const u = (rxp * P.ax + ryp * P.ay) / P.unit, v = (rxp * P.dx + ryp * P.dy) / P.unit;
  out[0] = Math.abs(u);
  out[1] = v;
  const jb = Math.round(((u + 2) / 4) * JAW_BINS);
  out[2] = v - P.jaw[jb < 0 ? 0 : jb > JAW_BINS ? JAW_BINS : jb]!;
  const qx = px - P.cx, qy = py - P.cy;
  const r = Math.sqrt(qx * qx + qy * qy);
  let ab = Math.floor(((Math.atan2(qy, qx) + Math.PI) / (2 * Math.PI)) * ANGLE_BINS);
  if (ab >= ANGLE_BINS) ab = ANGLE_BINS - 1;
  const ro = P.radius[ab]!;
  out[3] = r / ro;
  out[4] = (r - ro) / P.unit;
  const data = P.data;
  const o = (py * P.W + px) * 3;
  const R = data[o]!, G = data[o + 1]!, B = data[o + 2]!;
  const y = 0.299 * R + 0.587 * G + 0.114 * B;
  const cb = 128 - 0.168736 * R - 0.331264 * G + 0.5 * B;
  const cr = 128 + 0.5 * R - 0.418688 * G - 0.081312 * B;
  const a = cb - P.skCb, c = cr - P.skCr;
  const m2 = a * (P.q0 * a + P.q1 * c) + c * (P.q2 * a + P.q3 * c);
  out[5] = m2 > 400 ? 400 : m2;
  out[6] = y * P.invY;
  // the skin Gaussian's log-likelihood minus the likeliest surroundings cluster's
  let lo = -Infinity;
  for (let n = 1; n < P.nGauss; n++) lo = Math.max(lo, gaussLogLik(P.gauss, n, y, cb, cr));
  const ll = gaussLogLik(P.gauss, 0, y, cb, cr) - lo;
  out[7] = ll > 60 ? 60 : ll < -60 ? -60 : ll;
  out[8] = a;
  out[9] = c;
  out[10] = (Math.abs(lumaAt(P, px + 1, py) - lumaAt(P, px - 1, py)) + Math.abs(lumaAt(P, px, py + 1) - lumaAt(P, px, py - 1))) * P.invY;
  out[11] = P.faceLuma;
}

/**
 * The mask rule: the seed, plus the region's pixels that `accept` says are skin and that connect to the seed
 * through such pixels (4-connected), with holes filled (eyes, an open mouth: enclosed by skin, labelled skin).
 * `accept` is called at most once per pixel, and only where the flood reaches.
 */
export function fieldMask(field: SkinField, accept: (k: number) => boolean): FaceMask {
  const { box, region, seed } = field;
  const { w, h } = box;
  const n = w * h;
  const out = new Uint8Array(n);
  const stack: number[] = [];
  for (let k = 0; k < n; k++) if (seed[k]) { out[k] = 1; stack.push(k); }
  // 0: not judged yet, 1: skin, 2: not skin or outside the region
  const seen = new Uint8Array(n);
  const ok = (k: number): boolean => {
    if (seen[k]) return seen[k] === 1;
    const yes = region[k] === 1 && accept(k);
    seen[k] = yes ? 1 : 2;
    return yes;
  };
  flood4(out, w, h, stack, ok);
  fillHoles(out, w, h);
  return trimMask({ width: field.width, height: field.height, x: box.x, y: box.y, w, h, data: out });
}

/** Sets every 0 pixel not 4-connected to the rectangle's border through 0 pixels. */
function fillHoles(m: Uint8Array, w: number, h: number): void {
  const outside = new Uint8Array(w * h);
  const stack: number[] = [];
  const push = (k: number): void => {
    if (!m[k] && !outside[k]) { outside[k] = 1; stack.push(k); }
  };
  for (let i = 0; i < w; i++) { push(i); push((h - 1) * w + i); }
  for (let j = 0; j < h; j++) { push(j * w); push(j * w + w - 1); }
  while (stack.length > 0) {
    const k = stack.pop()!;
    const i = k % w;
    if (i > 0) push(k - 1);
    if (i + 1 < w) push(k + 1);
    if (k >= w) push(k - w);
    if (k + w < w * h) push(k + w);
  }
  for (let k = 0; k < w * h; k++) if (!outside[k]) m[k] = 1;
}

/** The learned mask of a face: fieldMask with the classifier deciding each pixel. */
export function learnedMask(field: SkinField, classifier: SkinClassifier): FaceMask {
  const x = new Float64Array(SKIN_FEATURE_COUNT);
  const P = field.data;
  if (!P) {
    return fieldMask(field, (k) => {
      field.features(k, x);
      return skinDecision(classifier, x);
    });
  }
  // fieldMask's rule with the decision inline (no closure per face on the per-pixel path)
  const { box, region, seed } = field;
  const { w, h } = box;
  const n = w * h;
  const out = new Uint8Array(n);
  const seen = new Uint8Array(n);
  const stack = new Int32Array(n);
  let top = 0;
  for (let k = 0; k < n; k++) if (seed[k]) { out[k] = 1; stack[top++] = k; }
  while (top > 0) {
    const k = stack[--top]!;
    const i = k % w;
    for (let d = 0; d < 4; d++) {
      const kk = d === 0 ? (i > 0 ? k - 1 : -1) : d === 1 ? (i + 1 < w ? k + 1 : -1) : d === 2 ? k - w : k + w;
      if (kk < 0 || kk >= n || out[kk] || seen[kk]) continue;
      // 1: skin, 2: not skin or outside the region; each pixel judged once
      let yes = false;
      if (region[kk] === 1) {
        fieldFeatures(P, kk, x);
        yes = skinDecision(classifier, x);
      }
      seen[kk] = yes ? 1 : 2;
      if (yes) { out[kk] = 1; stack[top++] = kk; }
    }
  }
  fillHoles(out, w, h);
  return trimMask({ width: field.width, height: field.height, x: box.x, y: box.y, w, h, data: out });
}

/**
 * The learned classifier as a Grower. Where this face's skin or surroundings cannot be sampled (no feature
 * field), it falls back to the hand rules' bounds around whatever skin there is ('skin-only' with `options`).
 */
export function learnedGrower(skinClassifier: SkinClassifier, options: GrowOptions = {}): Grower {
  const fallback = contrastGrower('skin-only', options);
  return {
    classifier: 'learned',
    maxFacePx: LEARNED_GROW_MAX_FACE_PX,
    grow(image: RgbImage, core: FaceMask, outline: Point[], landmarks68: Point[]): FaceMask {
      const field = learnedSkinField(image, core, outline, landmarks68);
      return field ? learnedMask(field, skinClassifier) : fallback.grow(image, core, outline, landmarks68);
    },
  };
}
