/**
 * Colour models of one face: its skin in YCbCr (sampled inside the cheeks and nose, where the landmarks say
 * skin is: skinSample), and skin against its surroundings (a Gaussian for the skin, k-means clusters for the
 * hair and background sampled in a ring outside the head: surroundRing). Both growers judge pixels by them.
 */
import type { Point, RgbImage } from '../image/geometry.js';
import { type FaceMask, rasterizePolygon, trimMask } from './mask.js';
import { scalePolygon } from './outline.js';

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

