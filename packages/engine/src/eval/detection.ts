/**
 * Face detection evaluation on box ground truth (`image x_min y_min x_max y_max` per line, as in the
 * CMU+MIT files): greedy matching of detections (best score first) to unmatched ground-truth boxes at
 * IoU >= 0.5 (PASCAL VOC). Reports recall, false positives per image and precision. Ground-truth
 * conventions differ (the CMU+MIT "generous" boxes come from landmarks and include hair and chin room;
 * BlazeFace's boxes are tight), so run it against each box file and read both.
 */
import { readFile } from 'node:fs/promises';
import { FaceflowError } from '@faceflow/shared';
import { type Box, iou } from '../geometry.js';

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
  return parseBoxFile(text, file);
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
