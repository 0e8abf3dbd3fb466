/**
 * Segmentation evaluation on LFW Part Labels (Kae, Sohn, Lee and Learned-Miller, CVPR 2013): per image a
 * PNG the size of the photo, (255,0,0) hair, (0,255,0) skin (face AND neck), (0,0,255) background.
 *
 * Scores per image, of the predicted mask of the labelled (centre) person:
 *   - against `skin`: the whole skin label, neck included, as the issue asks;
 *   - against `skin above the jaw`: the skin label cut at the jaw line, i.e. the face without the neck.
 *     The jaw line comes from the engine's 68 landmarks (not from the mask being scored): in the face's own
 *     frame (x across, y down, from the eye line), a pixel is above the jaw when it is above the piecewise-
 *     linear jaw curve through landmarks 0..16, extended level beyond its two ends. It is a model's estimate
 *     of the chin, not a human label: it lets a face-only mask be scored without the neck counting as missed.
 * Means are over images (each image weighs the same), as in the issue.
 */
import sharp from 'sharp';
import { FaceflowError } from '@faceflow/shared';
import type { Point } from '../image/geometry.js';
import { maskScores } from '../segment/mask.js';

export interface PartLabels {
  width: number;
  height: number;
  /** width * height, 1 where the label is skin */
  skin: Uint8Array;
  hair: Uint8Array;
}

/** Reads an LFW Part Labels mask PNG. A pixel takes the label of its dominant channel (the PNGs are clean). */
export async function readPartLabels(file: string | Buffer): Promise<PartLabels> {
  let raw: { data: Buffer; info: sharp.OutputInfo };
  try {
    raw = await sharp(file).removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
  } catch (e) {
    const what = typeof file === 'string' ? file : 'mask';
    throw new FaceflowError(/no such file|missing/i.test((e as Error).message) ? 'NOT_FOUND' : 'INVALID_IMAGE', `cannot read part labels ${what}: ${(e as Error).message}`, { cause: e });
  }
  const { data, info } = raw;
  const n = info.width * info.height;
  const skin = new Uint8Array(n);
  const hair = new Uint8Array(n);
  for (let k = 0; k < n; k++) {
    const r = data[3 * k]!, g = data[3 * k + 1]!, b = data[3 * k + 2]!;
    if (g > 127 && g > r && g > b) skin[k] = 1;
    else if (r > 127 && r > g && r > b) hair[k] = 1;
  }
  return { width: info.width, height: info.height, skin, hair };
}

/**
 * 1 for pixels above the jaw line of the 68 landmarks (see the module comment), frame-sized.
 */
export function aboveJawMask(landmarks68: Point[], width: number, height: number): Uint8Array {
  if (landmarks68.length !== 68) throw new FaceflowError('INVALID_ARGUMENT', `aboveJawMask needs 68 landmarks, got ${landmarks68.length}`);
  const le = centroid(landmarks68.slice(36, 42));
  const re = centroid(landmarks68.slice(42, 48));
  const len = Math.hypot(re.x - le.x, re.y - le.y) || 1;
  const ax = { x: (re.x - le.x) / len, y: (re.y - le.y) / len };
  const dn = { x: -ax.y, y: ax.x };
  const o = { x: (le.x + re.x) / 2, y: (le.y + re.y) / 2 };
  const toFace = (p: Point): Point => ({ x: (p.x - o.x) * ax.x + (p.y - o.y) * ax.y, y: (p.x - o.x) * dn.x + (p.y - o.y) * dn.y });
  const jaw = landmarks68.slice(0, 17).map(toFace).sort((a, b) => a.x - b.x);
  const jawY = (u: number): number => {
    if (u <= jaw[0]!.x) return jaw[0]!.y;
    if (u >= jaw[jaw.length - 1]!.x) return jaw[jaw.length - 1]!.y;
    for (let k = 0; k + 1 < jaw.length; k++) {
      const a = jaw[k]!, b = jaw[k + 1]!;
      if (u >= a.x && u <= b.x) return b.x === a.x ? Math.max(a.y, b.y) : a.y + ((u - a.x) / (b.x - a.x)) * (b.y - a.y);
    }
    return jaw[jaw.length - 1]!.y;
  };
  const out = new Uint8Array(width * height);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const f = toFace({ x, y });
      if (f.y <= jawY(f.x)) out[y * width + x] = 1;
    }
  }
  return out;
}

function centroid(points: Point[]): Point {
  let x = 0, y = 0;
  for (const p of points) { x += p.x; y += p.y; }
  return { x: x / points.length, y: y / points.length };
}

export interface SegScore {
  /** against the whole skin label (face and neck) */
  iou: number;
  precision: number;
  recall: number;
  /** against the skin label above the jaw line (the face without the neck) */
  iouFace: number;
  precisionFace: number;
  recallFace: number;
  /** share of the predicted mask on hair */
  onHair: number;
}

export function scoreSegmentation(predicted: Uint8Array, labels: PartLabels, landmarks68: Point[]): SegScore {
  const full = maskScores(predicted, labels.skin);
  const above = aboveJawMask(landmarks68, labels.width, labels.height);
  const faceSkin = new Uint8Array(labels.skin.length);
  for (let k = 0; k < faceSkin.length; k++) faceSkin[k] = labels.skin[k]! & above[k]!;
  const face = maskScores(predicted, faceSkin);
  let hair = 0;
  let p = 0;
  for (let k = 0; k < predicted.length; k++) {
    if (predicted[k]) {
      p++;
      hair += labels.hair[k]!;
    }
  }
  return {
    iou: full.iou,
    precision: full.precision,
    recall: full.recall,
    iouFace: face.iou,
    precisionFace: face.precision,
    recallFace: face.recall,
    onHair: p === 0 ? 0 : hair / p,
  };
}

export interface SegSummary {
  images: number;
  meanIou: number;
  meanPrecision: number;
  meanRecall: number;
  meanIouFace: number;
  meanPrecisionFace: number;
  meanRecallFace: number;
  meanOnHair: number;
  /** images with IoU under 0.5 */
  failures: number;
}

export function summariseSegmentation(scores: SegScore[]): SegSummary {
  const n = scores.length;
  const avg = (f: (s: SegScore) => number): number => (n === 0 ? 0 : scores.reduce((a, s) => a + f(s), 0) / n);
  return {
    images: n,
    meanIou: avg((s) => s.iou),
    meanPrecision: avg((s) => s.precision),
    meanRecall: avg((s) => s.recall),
    meanIouFace: avg((s) => s.iouFace),
    meanPrecisionFace: avg((s) => s.precisionFace),
    meanRecallFace: avg((s) => s.recallFace),
    meanOnHair: avg((s) => s.onHair),
    failures: scores.filter((s) => s.iou < 0.5).length,
  };
}
