/**
 * LFW pair-matching evaluation (Huang et al. 2007, "Labeled Faces in the Wild", the "unrestricted,
 * labeled outside data" protocol). Two pair-file formats:
 *  - View 2 `pairs.txt`: first line "10 300", then 10 folds of 300 matched + 300 mismatched pairs. We report
 *    10-fold cross-validated accuracy: the threshold is chosen on 9 folds and tested on the 10th; mean and
 *    (sample) standard deviation over the folds.
 *  - View 1 `pairsDevTrain.txt` / `pairsDevTest.txt`: first line "N", then N matched + N mismatched pairs.
 *    We report accuracy at a given (calibrated) threshold; with none given, at the best threshold on the
 *    same pairs (optimistic, labelled as such).
 * Matched pair line: `name i j`; mismatched: `nameA i nameB j`.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { FaceflowError } from '@faceflow/shared';
import { l2Distance } from '../match/decide.js';
import type { Box } from '../image/geometry.js';
import { farAcceptCount, farResolved } from './far.js';

/**
 * LFW images are centred on the labelled person: the detected face nearest the image centre (`faceflow eval
 * lfw`, `eval seg`, the skin classifier's fit).
 */
export function centreFace<F extends { box: Box }>(faces: F[], width: number, height: number): F | undefined {
  let best: F | undefined;
  let bestD = Infinity;
  for (const f of faces) {
    const d = (f.box.x + f.box.width / 2 - width / 2) ** 2 + (f.box.y + f.box.height / 2 - height / 2) ** 2;
    if (d < bestD) {
      bestD = d;
      best = f;
    }
  }
  return best;
}

export interface LfwPair {
  a: { name: string; index: number };
  b: { name: string; index: number };
  same: boolean;
  fold: number;
}

export interface LfwPairs {
  kind: 'view1' | 'folds';
  folds: number;
  pairs: LfwPair[];
}

export function parsePairs(text: string, source = 'pairs file'): LfwPairs {
  const lines = text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l.length > 0);
  const header = lines.shift()?.split(/\s+/).map(Number);
  const bad = (why: string): never => {
    throw new FaceflowError('INVALID_ARGUMENT', `${source}: ${why}`);
  };
  if (!header || header.some((n) => !Number.isInteger(n) || n <= 0)) bad('first line must be "N" (View 1) or "folds N" (View 2)');
  const [folds, perClass] = header!.length === 1 ? [1, header![0]!] : [header![0]!, header![1]!];
  if (header!.length > 2) bad('first line has more than two numbers');
  if (lines.length !== folds * perClass * 2) bad(`expected ${folds * perClass * 2} pairs after the header, found ${lines.length}`);
  const pairs = lines.map((line, i) => {
    const p = line.split(/\s+/);
    const fold = Math.floor(i / (2 * perClass));
    const num = (s: string | undefined): number => {
      const n = Number(s);
      if (!Number.isInteger(n) || n <= 0) bad(`line ${i + 2}: "${s}" is not an image number`);
      return n;
    };
    if (p.length === 3) return { a: { name: p[0]!, index: num(p[1]) }, b: { name: p[0]!, index: num(p[2]) }, same: true, fold };
    if (p.length === 4) return { a: { name: p[0]!, index: num(p[1]) }, b: { name: p[2]!, index: num(p[3]) }, same: false, fold };
    return bad(`line ${i + 2}: expected 3 or 4 fields, got ${p.length}`);
  });
  return { kind: header!.length === 1 ? 'view1' : 'folds', folds, pairs };
}

export async function readPairs(file: string): Promise<LfwPairs> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new FaceflowError('NOT_FOUND', `pairs file not found: ${file}`, { cause: e });
  }
  return parsePairs(text, file);
}

export function lfwImagePath(root: string, name: string, index: number): string {
  return path.join(root, name, `${name}_${String(index).padStart(4, '0')}.jpg`);
}

export interface Scored {
  distance: number;
  same: boolean;
}

export function accuracyAt(scored: Scored[], threshold: number): number {
  if (scored.length === 0) return 0;
  let ok = 0;
  for (const s of scored) if (s.distance < threshold === s.same) ok++;
  return ok / scored.length;
}

/** The threshold with the best accuracy on `scored`: candidates are midpoints between sorted distances. */
export function bestThreshold(scored: Scored[]): { threshold: number; accuracy: number } {
  const sorted = [...scored].sort((a, b) => a.distance - b.distance);
  const nSame = sorted.filter((s) => s.same).length;
  // threshold below everything: all "different" -> correct = number of different pairs
  let correct = sorted.length - nSame;
  let best = { threshold: (sorted[0]?.distance ?? 0) - 1e-6, correct };
  for (let i = 0; i < sorted.length; i++) {
    correct += sorted[i]!.same ? 1 : -1;
    const next = sorted[i + 1]?.distance ?? sorted[i]!.distance + 1e-3;
    if (next === sorted[i]!.distance) continue;
    if (correct > best.correct) best = { threshold: (sorted[i]!.distance + next) / 2, correct };
  }
  return { threshold: best.threshold, accuracy: sorted.length ? best.correct / sorted.length : 0 };
}

export interface RocPoint {
  far: number;
  tar: number;
  threshold: number;
}

export function roc(scored: Scored[]): RocPoint[] {
  const sorted = [...scored].sort((a, b) => a.distance - b.distance);
  const P = sorted.filter((s) => s.same).length;
  const N = sorted.length - P;
  const points: RocPoint[] = [{ far: 0, tar: 0, threshold: (sorted[0]?.distance ?? 0) - 1e-6 }];
  let tp = 0, fp = 0;
  for (let i = 0; i < sorted.length; i++) {
    if (sorted[i]!.same) tp++;
    else fp++;
    if (i + 1 < sorted.length && sorted[i + 1]!.distance === sorted[i]!.distance) continue;
    points.push({ far: N ? fp / N : 0, tar: P ? tp / P : 0, threshold: sorted[i]!.distance });
  }
  return points;
}

export function auc(points: RocPoint[]): number {
  let a = 0;
  for (let i = 1; i < points.length; i++) a += (points[i]!.far - points[i - 1]!.far) * (points[i]!.tar + points[i - 1]!.tar) / 2;
  return a;
}

/**
 * TAR at the largest threshold whose FAR <= `far`, and that threshold. With M impostor pairs the FAR
 * resolution is 1/M: at 1e-3 on 3000 impostors that is at most 3 false accepts; with fewer than
 * 1/far impostors it means zero false accepts, and `resolved` is false.
 */
export function tarAtFar(points: RocPoint[], far: number, impostors: number): { tar: number; threshold: number; resolved: boolean } {
  let best = points[0]!;
  for (const p of points) if (p.far <= far && p.tar >= best.tar) best = p;
  return { tar: best.tar, threshold: best.threshold, resolved: impostors * far >= 1 };
}

export interface LfwReport {
  protocol: 'view2-10fold' | 'view1';
  pairs: number;
  /** pairs where a face could not be found in one of the images (scored as a wrong answer) */
  failedPairs: number;
  accuracy: number;
  std: number;
  threshold: number;
  /** how the threshold was chosen */
  thresholdSource: 'calibrated' | 'given' | 'cross-validated' | 'best-on-same-pairs';
  bestAccuracy: number;
  bestThreshold: number;
  auc: number;
  tarAtFar1e3: number;
  thresholdAtFar1e3: number;
  farResolved: boolean;
  folds?: Array<{ accuracy: number; threshold: number }>;
}

export function evaluatePairs(pairs: LfwPairs, scored: Array<Scored & { fold: number; failed?: boolean }>, calibratedThreshold?: number, source: 'calibrated' | 'given' = 'calibrated'): LfwReport {
  const points = roc(scored);
  const impostors = scored.filter((s) => !s.same).length;
  const atFar = tarAtFar(points, 1e-3, impostors);
  const best = bestThreshold(scored);
  const base = {
    pairs: scored.length,
    failedPairs: scored.filter((s) => s.failed).length,
    bestAccuracy: best.accuracy,
    bestThreshold: best.threshold,
    auc: auc(points),
    tarAtFar1e3: atFar.tar,
    thresholdAtFar1e3: atFar.threshold,
    farResolved: atFar.resolved,
  };
  if (pairs.kind === 'folds' && pairs.folds > 1) {
    const folds: Array<{ accuracy: number; threshold: number }> = [];
    for (let f = 0; f < pairs.folds; f++) {
      const train = scored.filter((s) => s.fold !== f);
      const test = scored.filter((s) => s.fold === f);
      const { threshold } = bestThreshold(train);
      folds.push({ accuracy: accuracyAt(test, threshold), threshold });
    }
    const mean = folds.reduce((s, f) => s + f.accuracy, 0) / folds.length;
    const std = Math.sqrt(folds.reduce((s, f) => s + (f.accuracy - mean) ** 2, 0) / Math.max(1, folds.length - 1));
    const thr = folds.reduce((s, f) => s + f.threshold, 0) / folds.length;
    return { protocol: 'view2-10fold', accuracy: mean, std, threshold: thr, thresholdSource: 'cross-validated', folds, ...base };
  }
  if (calibratedThreshold !== undefined) {
    return { protocol: 'view1', accuracy: accuracyAt(scored, calibratedThreshold), std: 0, threshold: calibratedThreshold, thresholdSource: source, ...base };
  }
  return { protocol: 'view1', accuracy: best.accuracy, std: 0, threshold: best.threshold, thresholdSource: 'best-on-same-pairs', ...base };
}

/** An ROC curve as an SVG document (rendered to PNG by the caller through sharp). */
export function rocSvg(points: RocPoint[], title: string): string {
  const W = 480, H = 400, L = 60, B = 50, T = 30, R = 20;
  const pw = W - L - R, ph = H - T - B;
  // log-scaled FAR axis from 1e-4 to 1 shows the low-FAR region that matters for identification
  const fx = (far: number): number => L + ((Math.log10(Math.max(far, 1e-4)) + 4) / 4) * pw;
  const fy = (tar: number): number => T + (1 - tar) * ph;
  const path = points.map((p, i) => `${i ? 'L' : 'M'}${fx(p.far).toFixed(1)},${fy(p.tar).toFixed(1)}`).join(' ');
  const ticks = [1e-4, 1e-3, 1e-2, 1e-1, 1].map((t) => `<line x1="${fx(t)}" y1="${T}" x2="${fx(t)}" y2="${T + ph}" stroke="#ddd"/><text x="${fx(t)}" y="${H - B + 18}" font-size="12" text-anchor="middle">${t}</text>`).join('');
  const yt = [0, 0.25, 0.5, 0.75, 1].map((t) => `<line x1="${L}" y1="${fy(t)}" x2="${L + pw}" y2="${fy(t)}" stroke="#ddd"/><text x="${L - 8}" y="${fy(t) + 4}" font-size="12" text-anchor="end">${t}</text>`).join('');
  const esc = title.replace(/[<>&"]/g, '');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}"><rect width="100%" height="100%" fill="white"/>${ticks}${yt}<rect x="${L}" y="${T}" width="${pw}" height="${ph}" fill="none" stroke="black"/><path d="${path}" fill="none" stroke="#c0392b" stroke-width="2"/><text x="${W / 2}" y="20" font-size="14" text-anchor="middle">${esc}</text><text x="${L + pw / 2}" y="${H - 10}" font-size="12" text-anchor="middle">false accept rate (log)</text><text x="15" y="${T + ph / 2}" font-size="12" text-anchor="middle" transform="rotate(-90 15 ${T + ph / 2})">true accept rate</text></svg>`;
}

export interface AllPairsImpostors {
  /** images with an embedding */
  images: number;
  /** pairs of images of two different people */
  impostorPairs: number;
  /** per FAR ("1e-3" .. "1e-6"), the distance at it (rounded down to 1e-4), or null when the pairs cannot resolve it */
  distanceAtFar: Record<string, number | null>;
}

/** The FARs `allPairsImpostors` reads off. */
export const ALL_PAIRS_FARS = [1e-3, 1e-4, 1e-5, 1e-6] as const;

/**
 * Impostor distances over every pair of images of two different people (the person is the image's folder,
 * LFW's layout): the distance at FAR 1e-3 down to 1e-6, by the one FAR rule (train/far.ts farAcceptCount). A
 * pairs file has ~1000 impostor pairs, which resolves 1e-3 at best; the ~n^2/2 pairs here resolve 1e-6 from
 * n ~ 2000 (`faceflow eval lfw --all-pairs`).
 */
export function allPairsImpostors(embeddings: Map<string, Float32Array | null>): AllPairsImpostors {
  const items = [...embeddings].filter((e): e is [string, Float32Array] => e[1] !== null).map(([file, e]) => ({ person: path.basename(path.dirname(file)), e }));
  // only the smallest distances matter: keep those under a cut-off, widened if too few land under it
  let cutoff = 0.6;
  for (;;) {
    const small: number[] = [];
    let pairs = 0;
    for (let i = 0; i < items.length; i++) {
      for (let j = i + 1; j < items.length; j++) {
        if (items[i]!.person === items[j]!.person) continue;
        pairs++;
        const d = l2Distance(items[i]!.e, items[j]!.e);
        if (d < cutoff) small.push(d);
      }
    }
    small.sort((a, b) => a - b);
    const need = farAcceptCount(pairs, ALL_PAIRS_FARS[0]) + 1;
    if (small.length < need && cutoff < 4) {
      cutoff *= 1.5;
      continue;
    }
    const distanceAtFar: Record<string, number | null> = {};
    for (const far of ALL_PAIRS_FARS) {
      // the threshold d[k] of the rule; rounded down, never up: rounding up could take in the (k+1)-th
      // impostor and break the FAR
      const k = farAcceptCount(pairs, far);
      distanceAtFar[far.toExponential(0)] = farResolved(pairs, far) ? Math.floor((small[k] ?? cutoff) * 1e4) / 1e4 : null;
    }
    return { images: items.length, impostorPairs: pairs, distanceAtFar };
  }
}
