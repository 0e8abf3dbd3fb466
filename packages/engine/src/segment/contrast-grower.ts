/**
 * The contrast grower, the hand-made rules (classifiers 'contrast' and 'skin-only' of GrowOptions): a pixel
 * is skin when its colour is within the bounds of this face's skin model and, for 'contrast', likelier under
 * the skin's Gaussian than under the surroundings' clusters; the mask floods from the outline through such
 * pixels inside growRegion. 'contrast' first peels the outline's outer band of what looks like the
 * surroundings (hair over the forehead: trimBand).
 */
import type { RgbImage, Point } from '../image/geometry.js';
import { type FaceMask, flood4, trimMask, unionMasks } from './mask.js';
import { eyeLineAngle68 } from '../models/facemesh.js';
import { type ContrastModel, type SkinModel, contrastModel, isSkin, skinModel, skinSample, surroundRing } from './colour.js';
import { GROW_MAX_FACE_PX, type GrowOptions, growRegion } from './growth.js';
import type { Grower } from './grower.js';

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

/**
 * The hand rules as a Grower: 'contrast' (skin bounds, trimmed outline, contrast with the surroundings) or
 * 'skin-only' (the bounds alone), with `options`' region, chroma, luma and trimBand.
 */
export function contrastGrower(classifier: 'contrast' | 'skin-only', options: GrowOptions = {}): Grower {
  return {
    classifier,
    maxFacePx: GROW_MAX_FACE_PX,
    grow(image: RgbImage, core: FaceMask, outline: Point[], landmarks68: Point[]): FaceMask {
      const skin = skinModel(image, skinSample(image, landmarks68));
      if (!skin) return core;
      const angle = eyeLineAngle68(landmarks68);
      const region = growRegion(outline, angle, image.width, image.height, options);
      if (classifier !== 'contrast') return growSkin(image, core, region, skin, options);
      const sample = skinSample(image, landmarks68);
      const contrast = contrastModel(image, sample, surroundRing(outline, angle, landmarks68, image.width, image.height));
      if (!contrast) return growSkin(image, core, region, skin, options);
      const trimmed = trimBand(image, core, outline, contrast, options.trimBand ?? 0.1);
      return growSkin(image, trimmed, region, skin, options, contrast);
    },
  };
}
