/**
 * The growth space: the options of growing, the region around an outline where skin may be found (forehead,
 * ears, neck), and the picture a grower works in (the frame itself, or a face larger than the grower's cap
 * scaled down to it, its mask scaled back up). Which pixels are skin is the grower's business (grower.ts).
 */
import { FaceflowError } from '@faceflow/shared';
import { warpAffine, type Point, type RgbImage } from '../image/geometry.js';
import { type FaceMask, rasterizePolygon, trimMask, unionMasks } from './mask.js';
import type { SkinClassifier } from './skin-classifier.js';
import type { Grower } from './grower.js';

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
 * The outline grown by `grower` (in the growth space its maxFacePx sets), at the frame's resolution. The outline's own mask at the frame's
 * resolution is only rasterised where it is used: growing in the frame itself, or as what is returned when
 * growing cannot run (no 68 landmarks, an empty outline, nothing grown).
 */
export function grownMask(image: RgbImage, outline: Point[], landmarks68: Point[], grower: Grower): FaceMask {
  const core = (): FaceMask => rasterizePolygon(outline, image.width, image.height);
  if (landmarks68.length !== 68) return core();
  const space = growthSpace(image, outline, landmarks68, grower.maxFacePx);
  if (space.k === 1) {
    const c = core();
    return c.w === 0 ? c : grower.grow(image, c, outline, landmarks68);
  }
  const { k, ox, oy } = space;
  const sw = space.image.width, sh = space.image.height;
  const small = rasterizePolygon(space.outline, sw, sh);
  // the outline covers no pixel centre even at the frame's resolution: nothing to grow from
  if (small.w === 0 && core().w === 0) return core();
  const m = small.w === 0 ? small : grower.grow(space.image, small, space.outline, space.landmarks68);
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

