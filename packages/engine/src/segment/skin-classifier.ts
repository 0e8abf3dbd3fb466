/**
 * The learned skin classifier for growing a face mask (`classifier: 'learned'` in GrowOptions): a small
 * gradient-boosted ensemble of depth-3 trees over per-pixel features that put together where the pixel is
 * relative to this face's geometry (eye line, chin, jaw, outline) and how its colour compares with this
 * face's own skin and with the colours around the head. The hand-made rules of the `contrast` classifier
 * judge colour alone inside a fixed region; a neck in shadow is darker than the cheeks but sits right under
 * the jaw, and a beard can be skin-coloured at a distance but sits on the jaw line with a strong gradient:
 * position and colour together is what the trees learn.
 *
 * The weights ship as JSON (packages/engine/models/skin-classifier.json, a few KB) with their origin; they are
 * made by `faceflow train seg` (packages/cli/src/commands/train-seg.ts) on LFW Part Labels images.
 *
 * This module is the classifier's file: the JSON format, its checks and loading, and the tree evaluation
 * (skinMargin, skinDecision). The feature field the trees read and the mask rule are the learned grower's
 * (learned-grower.ts); the colour models it builds on, colour.ts's.
 */
import { readFile } from 'node:fs/promises';
import { FaceflowError } from '@faceflow/shared';

/** The features, in the order the trees index them. A model names them; a model with other names is refused. */
export const SKIN_FEATURES = [
  // position, in the face's frame (x along the eye line, y down), unit: eye line to chin
  'across', // |x| from the eyes' midpoint
  'down', // y from the eye line (the chin is near 1)
  'belowJaw', // y below the 68-point jaw curve at this x (negative above it)
  'radial', // distance from the outline's centre over the outline's radius in that direction (1 on the outline)
  'beyond', // distance outside the outline along that direction (negative inside)
  // colour, against this face's skin (cheeks and nose) and the colours around the head
  'chroma', // squared Mahalanobis distance of (Cb, Cr) to the skin model
  'luma', // Y over the skin's mean Y
  'contrast', // log-likelihood of the skin Gaussian minus that of the best surroundings cluster (YCbCr)
  'dCb', // Cb minus the skin's
  'dCr', // Cr minus the skin's
  'gradient', // |dY/dx| + |dY/dy| (central differences) over the skin's mean Y
  'faceLuma', // the skin's mean Y / 255 (how bright this face is lit)
] as const;
export const SKIN_FEATURE_COUNT = SKIN_FEATURES.length;

/** Depth of every tree: 7 split nodes, 8 leaves, heap order (children of node i: 2i+1 left, 2i+2 right). */
export const SKIN_TREE_DEPTH = 3;
const NODES = (1 << SKIN_TREE_DEPTH) - 1;
const LEAVES = 1 << SKIN_TREE_DEPTH;

export interface SkinTree {
  /** feature index per split node; a sample goes left when feature <= threshold */
  f: number[];
  t: number[];
  /** leaf values (added to the log-odds) */
  v: number[];
}

export interface SkinClassifierOrigin {
  /** which images, e.g. "even-indexed 150 of 300 (sorted by name) in lfw-parts/images" */
  trainedOn: string;
  command: string;
  date: string;
  [k: string]: unknown;
}

/** The JSON file's shape. */
export interface SkinClassifierFile {
  format: 'faceflow-skin-gbt';
  version: 1;
  features: string[];
  depth: number;
  /** starting log-odds */
  base: number;
  /** a pixel is skin when its probability is above this */
  threshold: number;
  trees: SkinTree[];
  origin: SkinClassifierOrigin;
}

/** A parsed, checked classifier, flattened for speed. */
export interface SkinClassifier {
  readonly base: number;
  readonly threshold: number;
  /** the threshold as log-odds: comparing margins avoids an exp per pixel */
  readonly logitThreshold: number;
  readonly trees: number;
  readonly feat: Int32Array;
  readonly thr: Float64Array;
  readonly leaf: Float64Array;
  /**
   * after t trees (index t), a margin under rejectBelow[t] can no longer rise above the threshold, and one
   * over acceptAbove[t] can no longer fall to it (see skinDecision)
   */
  readonly rejectBelow: Float64Array;
  readonly acceptAbove: Float64Array;
  readonly origin: SkinClassifierOrigin;
}

/** The bundled weights: packages/engine/models/ (resolves from src/ under vitest and from dist/ when built). */
export const DEFAULT_SKIN_CLASSIFIER_URL = new URL('../../models/skin-classifier.json', import.meta.url);

/** Checks a parsed JSON value and flattens it. `source` names it in errors. */
export function parseSkinClassifier(json: unknown, source = 'skin classifier'): SkinClassifier {
  const bad = (why: string): FaceflowError => new FaceflowError('MODEL_LOAD', `${source} is not a faceflow skin classifier: ${why}`);
  if (typeof json !== 'object' || json === null) throw bad('not a JSON object');
  const j = json as Partial<SkinClassifierFile>;
  if (j.format !== 'faceflow-skin-gbt') throw bad(`format is ${JSON.stringify(j.format)}, expected "faceflow-skin-gbt"`);
  if (j.version !== 1) throw bad(`version ${JSON.stringify(j.version)} is not supported (1)`);
  if (!Array.isArray(j.features) || j.features.join(',') !== SKIN_FEATURES.join(',')) {
    throw bad(`its features (${Array.isArray(j.features) ? j.features.join(',') : 'none'}) are not this code's (${SKIN_FEATURES.join(',')}): retrain it with faceflow train seg`);
  }
  if (j.depth !== SKIN_TREE_DEPTH) throw bad(`depth ${JSON.stringify(j.depth)}, expected ${SKIN_TREE_DEPTH}`);
  if (typeof j.base !== 'number' || !Number.isFinite(j.base)) throw bad('base is not a finite number');
  if (typeof j.threshold !== 'number' || !(j.threshold > 0 && j.threshold < 1)) throw bad('threshold must be a probability in (0, 1)');
  if (!Array.isArray(j.trees) || j.trees.length === 0) throw bad('no trees');
  if (typeof j.origin !== 'object' || j.origin === null || typeof j.origin.trainedOn !== 'string' || typeof j.origin.command !== 'string' || typeof j.origin.date !== 'string') {
    throw bad('origin (trainedOn, command, date) is missing');
  }
  const n = j.trees.length;
  const feat = new Int32Array(n * NODES);
  const thr = new Float64Array(n * NODES);
  const leaf = new Float64Array(n * LEAVES);
  j.trees.forEach((t, i) => {
    const ok = (a: unknown, len: number): a is number[] => Array.isArray(a) && a.length === len && a.every((x) => typeof x === 'number' && Number.isFinite(x));
    if (!ok(t?.f, NODES) || !ok(t.t, NODES) || !ok(t.v, LEAVES)) throw bad(`tree ${i} needs f and t of ${NODES} numbers and v of ${LEAVES}`);
    for (let k = 0; k < NODES; k++) {
      const f = t.f[k]!;
      if (!Number.isInteger(f) || f < 0 || f >= SKIN_FEATURE_COUNT) throw bad(`tree ${i} splits on feature ${f}, out of range`);
      feat[i * NODES + k] = f;
      thr[i * NODES + k] = t.t[k]!;
    }
    for (let k = 0; k < LEAVES; k++) leaf[i * LEAVES + k] = t.v[k]!;
  });
  const logitThreshold = Math.log(j.threshold / (1 - j.threshold));
  // what the trees still to come can add at most (the sum of their largest leaves) and at least, with a
  // rounding allowance far above what 60 additions can lose
  const rejectBelow = new Float64Array(n + 1), acceptAbove = new Float64Array(n + 1);
  let hi = 0, lo = 0;
  rejectBelow[n] = -Infinity;
  acceptAbove[n] = Infinity;
  for (let t = n - 1; t >= 0; t--) {
    let mx = -Infinity, mn = Infinity;
    for (let k = 0; k < LEAVES; k++) {
      const v = leaf[t * LEAVES + k]!;
      if (v > mx) mx = v;
      if (v < mn) mn = v;
    }
    hi += mx;
    lo += mn;
    const eps = 1e-9 * (1 + Math.abs(logitThreshold) + Math.abs(hi) + Math.abs(lo));
    rejectBelow[t] = logitThreshold - hi - eps;
    acceptAbove[t] = logitThreshold - lo + eps;
  }
  return { base: j.base, threshold: j.threshold, logitThreshold, trees: n, feat, thr, leaf, rejectBelow, acceptAbove, origin: j.origin };
}

/** Reads and checks a classifier file (default: the bundled one). */
export async function loadSkinClassifier(file: string | URL = DEFAULT_SKIN_CLASSIFIER_URL): Promise<SkinClassifier> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new FaceflowError('NOT_FOUND', `cannot read skin classifier ${String(file)}: ${(e as Error).message}`, { cause: e });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new FaceflowError('MODEL_LOAD', `skin classifier ${String(file)} is not JSON: ${(e as Error).message}`, { cause: e });
  }
  return parseSkinClassifier(json, `skin classifier ${String(file)}`);
}

/** The ensemble's log-odds for one feature vector. */
export function skinMargin(c: SkinClassifier, x: ArrayLike<number>): number {
  let s = c.base;
  const { feat, thr, leaf } = c;
  for (let t = 0, o = 0, l = 0; t < c.trees; t++, o += NODES, l += LEAVES) {
    let i = 0;
    while (i < NODES) i = x[feat[o + i]!]! <= thr[o + i]! ? 2 * i + 1 : 2 * i + 2;
    s += leaf[l + i - NODES]!;
  }
  return s;
}

/**
 * `skinMargin(c, x) > c.logitThreshold`, decided with fewer trees where the answer is already certain: after
 * each tree, the trees still to come can add at most the sum of their largest leaves and at least the sum of
 * their smallest (c.rejectBelow, c.acceptAbove), so once the margin so far is beyond the threshold by more
 * than that, the rest cannot change the answer. Otherwise the sum is skinMargin's, in the same order: the
 * same decision for every input (skin-classifier.test.ts checks it against skinMargin). On LFW faces about
 * a fifth of the tree evaluations are skipped.
 */
export function skinDecision(c: SkinClassifier, x: ArrayLike<number>): boolean {
  const { feat, thr, leaf, rejectBelow, acceptAbove } = c;
  let s = c.base;
  for (let t = 0, o = 0, l = 0; t < c.trees; t++, o += NODES, l += LEAVES) {
    if (s < rejectBelow[t]!) return false;
    if (s > acceptAbove[t]!) return true;
    // depth 3 (SKIN_TREE_DEPTH, checked when the file is parsed), unrolled; heap order as in skinMargin
    let i = x[feat[o]!]! <= thr[o]! ? 1 : 2;
    i = x[feat[o + i]!]! <= thr[o + i]! ? 2 * i + 1 : 2 * i + 2;
    i = x[feat[o + i]!]! <= thr[o + i]! ? 2 * i + 1 : 2 * i + 2;
    s += leaf[l + i - NODES]!;
  }
  return s > c.logitThreshold;
}

