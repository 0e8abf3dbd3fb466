/**
 * Face detection evaluation on box ground truth (`image x_min y_min x_max y_max` per line, as in the
 * CMU+MIT files): greedy matching of detections (best score first) to unmatched ground-truth boxes at
 * IoU >= 0.5 (PASCAL VOC). Reports recall, false positives per image and precision. Ground-truth
 * conventions differ (the CMU+MIT "generous" boxes come from landmarks and include hair and chin room;
 * BlazeFace's boxes are tight), so run it against each box file and read both.
 */
import { readFile, rename, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { FaceflowError } from '@faceflow/shared';
import { type Box, iou } from '../image/geometry.js';

export type GroundTruth = Map<string, Box[]>;

export function parseBoxFile(text: string, source = 'boxes file'): GroundTruth {
  const gt: GroundTruth = new Map();
  text.split(/\r?\n/).forEach((line, i) => {
    const t = line.trim();
    if (!t || t.startsWith('#')) return;
    const p = t.split(/\s+/);
    const nums = p.slice(1).map(Number);
    if (p.length !== 5 || nums.some((n) => !Number.isFinite(n))) {
      throw new FaceflowError('INVALID_ARGUMENT', `${source} line ${i + 1}: expected "image x_min y_min x_max y_max"`);
    }
    const [x1, y1, x2, y2] = nums as [number, number, number, number];
    const list = gt.get(p[0]!) ?? [];
    list.push({ x: x1, y: y1, width: x2 - x1, height: y2 - y1 });
    gt.set(p[0]!, list);
  });
  return gt;
}

export async function readBoxFile(file: string): Promise<GroundTruth> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new FaceflowError('NOT_FOUND', `boxes file not found: ${file}`, { cause: e });
  }
  return parseGroundTruth(text, file);
}

export interface DetectionCounts {
  images: number;
  groundTruth: number;
  truePositives: number;
  falsePositives: number;
}

export function matchDetections(detections: Array<{ box: Box; score: number }>, truth: Box[], iouThreshold = 0.5): { tp: number; fp: number } {
  const used = new Array<boolean>(truth.length).fill(false);
  let tp = 0, fp = 0;
  for (const d of [...detections].sort((a, b) => b.score - a.score)) {
    let best = -1, bestIou = iouThreshold;
    truth.forEach((g, i) => {
      if (used[i]) return;
      const v = iou(d.box, g);
      if (v >= bestIou) {
        bestIou = v;
        best = i;
      }
    });
    if (best >= 0) {
      used[best] = true;
      tp++;
    } else fp++;
  }
  return { tp, fp };
}

export function summarise(c: DetectionCounts): DetectionCounts & { recall: number; precision: number; falsePositivesPerImage: number } {
  return {
    ...c,
    recall: c.groundTruth ? c.truePositives / c.groundTruth : 0,
    precision: c.truePositives + c.falsePositives ? c.truePositives / (c.truePositives + c.falsePositives) : 0,
    falsePositivesPerImage: c.images ? c.falsePositives / c.images : 0,
  };
}

/**
 * dlib's imglab XML (`<image file='x.jpg'><box top left width height/>...`), as in dlib's face detection
 * examples; boxes marked `ignore='1'` are left out.
 */
export function parseDlibXml(text: string, source = 'boxes file'): GroundTruth {
  const gt: GroundTruth = new Map();
  const images = [...text.matchAll(/<image\s+file='([^']+)'[^>]*?(\/>|>([\s\S]*?)<\/image>)/g)];
  if (images.length === 0) throw new FaceflowError('INVALID_ARGUMENT', `${source}: no <image file='...'> elements (expected dlib imglab XML)`);
  for (const m of images) {
    const boxes: Box[] = [];
    for (const b of (m[3] ?? '').matchAll(/<box\s([^>]*?)\/?>/g)) {
      const attr = (k: string): number | undefined => {
        const a = new RegExp(`\\b${k}='(-?[0-9.]+)'`).exec(b[1]!);
        return a ? Number(a[1]) : undefined;
      };
      if (attr('ignore') === 1) continue;
      const [top, left, width, height] = [attr('top'), attr('left'), attr('width'), attr('height')];
      if ([top, left, width, height].some((v) => v === undefined || !Number.isFinite(v))) {
        throw new FaceflowError('INVALID_ARGUMENT', `${source}: a <box> of ${m[1]} lacks top, left, width or height`);
      }
      boxes.push({ x: left!, y: top!, width: width!, height: height! });
    }
    gt.set(m[1]!, [...(gt.get(m[1]!) ?? []), ...boxes]);
  }
  return gt;
}

/** A box file by its content: dlib imglab XML, or lines `image x_min y_min x_max y_max`. */
export function parseGroundTruth(text: string, source = 'boxes file'): GroundTruth {
  return /^\s*<\?xml|^\s*<dataset/.test(text) ? parseDlibXml(text, source) : parseBoxFile(text, source);
}

/**
 * One box correction per detector (issue 11): width and height scaled about the box centre, so that the
 * detector's boxes follow the ground truth's convention. Fitted by `faceflow eval det --fit-boxes` on a
 * development set and stored with the detector (packages/engine/models/box-corrections.json).
 */
export interface BoxCorrection {
  widthScale: number;
  heightScale: number;
}

export const IDENTITY_CORRECTION: BoxCorrection = { widthScale: 1, heightScale: 1 };

export function correctBox(b: Box, c: BoxCorrection): Box {
  const w = b.width * c.widthScale;
  const h = b.height * c.heightScale;
  return { x: b.x + (b.width - w) / 2, y: b.y + (b.height - h) / 2, width: w, height: h };
}

export interface ScoredBox {
  box: Box;
  score: number;
}

/** Detections of each evaluated image (with scores), against that image's ground truth. */
export interface DetectionRun {
  images: Array<{ image: string; detections: ScoredBox[]; truth: Box[] }>;
}

export interface OperatingPoint {
  /** the lowest score threshold at which false positives per image stay within the limit */
  threshold: number;
  recall: number;
  falsePositivesPerImage: number;
  truePositives: number;
  falsePositives: number;
  /** mean IoU of the matched detections with their ground truth */
  meanIou: number;
}

/**
 * Recall at the lowest score threshold whose false positives per image stay <= `maxFpPerImage`, boxes
 * corrected by `c`. Greedy best-first matching per image means the matches above a threshold are a prefix
 * of the matches of all detections, so one matching serves every threshold.
 */
export function operatingPoint(run: DetectionRun, c: BoxCorrection, maxFpPerImage: number, iouThreshold = 0.5): OperatingPoint {
  const marks: Array<{ score: number; tp: boolean; iou: number }> = [];
  let groundTruth = 0;
  for (const im of run.images) {
    groundTruth += im.truth.length;
    const used = new Array<boolean>(im.truth.length).fill(false);
    for (const d of [...im.detections].sort((a, b) => b.score - a.score)) {
      const box = correctBox(d.box, c);
      let best = -1;
      let bestIou = iouThreshold;
      im.truth.forEach((g, i) => {
        if (used[i]) return;
        const v = iou(box, g);
        if (v >= bestIou) {
          bestIou = v;
          best = i;
        }
      });
      if (best >= 0) used[best] = true;
      marks.push({ score: d.score, tp: best >= 0, iou: best >= 0 ? bestIou : 0 });
    }
  }
  marks.sort((a, b) => b.score - a.score);
  const n = run.images.length || 1;
  let tp = 0;
  let fp = 0;
  let iouSum = 0;
  let point: OperatingPoint = { threshold: 1, recall: 0, falsePositivesPerImage: 0, truePositives: 0, falsePositives: 0, meanIou: 0 };
  for (let i = 0; i < marks.length; i++) {
    if (marks[i]!.tp) {
      tp++;
      iouSum += marks[i]!.iou;
    } else fp++;
    // a threshold sits between distinct scores only
    if (i + 1 < marks.length && marks[i + 1]!.score === marks[i]!.score) continue;
    if (fp / n > maxFpPerImage) break;
    point = { threshold: marks[i]!.score, recall: groundTruth ? tp / groundTruth : 0, falsePositivesPerImage: fp / n, truePositives: tp, falsePositives: fp, meanIou: tp ? iouSum / tp : 0 };
  }
  return point;
}

/**
 * The box correction that maximises recall at <= `maxFpPerImage` on a development run: a grid over width
 * scale 0.8-2.0 and height scale 0.8-1.8 in steps of 0.01. Recall is flat over a range of corrections (any
 * box that clears the IoU threshold counts), so among equal recalls the one whose matches overlap the
 * ground truth most (highest mean IoU) wins: that is the ground truth's convention, not merely the
 * smallest correction that passes.
 */
export function fitBoxCorrection(run: DetectionRun, maxFpPerImage: number, iouThreshold = 0.5): BoxCorrection & { point: OperatingPoint } {
  let best: BoxCorrection & { point: OperatingPoint } = { ...IDENTITY_CORRECTION, point: operatingPoint(run, IDENTITY_CORRECTION, maxFpPerImage, iouThreshold) };
  for (let w = 80; w <= 200; w++) {
    for (let h = 80; h <= 180; h++) {
      const c = { widthScale: w / 100, heightScale: h / 100 };
      const point = operatingPoint(run, c, maxFpPerImage, iouThreshold);
      if (point.recall > best.point.recall + 1e-12 || (Math.abs(point.recall - best.point.recall) <= 1e-12 && point.meanIou > best.point.meanIou)) best = { ...c, point };
    }
  }
  return best;
}

/** Where a fitted correction is stored, with how it was fitted. */
export interface StoredBoxCorrection extends BoxCorrection {
  /** the development set: images folder and boxes file as given to `eval det --fit-boxes` */
  images: string;
  boxes: string;
  minFace?: number;
  maxFpPerImage: number;
  iou: number;
  /** recall at <= maxFpPerImage on the development set, raw and corrected */
  rawRecall: number;
  recall: number;
  date: string;
}

export interface BoxCorrectionFile {
  note: string;
  detectors: Record<string, StoredBoxCorrection>;
}

/** The corrections shipped with the engine, one per detector (registry name). */
export const DEFAULT_BOX_CORRECTIONS = fileURLToPath(new URL('../../models/box-corrections.json', import.meta.url));

export async function readBoxCorrections(file = DEFAULT_BOX_CORRECTIONS): Promise<BoxCorrectionFile> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { note: BOX_CORRECTION_NOTE, detectors: {} };
    throw new FaceflowError('INVALID_CONFIG', `cannot read box corrections ${file}: ${(e as Error).message}`, { cause: e });
  }
  try {
    const doc = JSON.parse(text) as BoxCorrectionFile;
    for (const [k, v] of Object.entries(doc.detectors ?? {})) {
      if (!(v.widthScale > 0 && v.heightScale > 0)) throw new Error(`detectors.${k}: widthScale and heightScale must be > 0`);
    }
    return { note: doc.note ?? BOX_CORRECTION_NOTE, detectors: doc.detectors ?? {} };
  } catch (e) {
    throw new FaceflowError('INVALID_CONFIG', `box corrections ${file}: ${(e as Error).message}`, { cause: e });
  }
}

const BOX_CORRECTION_NOTE =
  'Per detector (registry name): width and height scale about the box centre that turn its boxes into the ' +
  "CMU+MIT 'generous' ground-truth convention; fitted by `faceflow eval det --fit-boxes` on the development set named in each entry (issue 11).";

/** Stores `c` for `detector`, keeping the other detectors' entries; written to a temporary file, then renamed. */
export async function writeBoxCorrection(detector: string, c: StoredBoxCorrection, file = DEFAULT_BOX_CORRECTIONS): Promise<void> {
  const doc = await readBoxCorrections(file);
  doc.detectors[detector] = c;
  const sorted = Object.fromEntries(Object.entries(doc.detectors).sort(([a], [b]) => a.localeCompare(b)));
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, `${JSON.stringify({ note: doc.note, detectors: sorted }, null, 2)}\n`);
  await rename(tmp, file);
}
