/**
 * Fitting the learned skin classifier (skin-classifier.ts): gradient boosting of depth-3 trees on the logistic
 * loss, with histogram splits (each feature cut at up to `bins` quantiles of its values). Plain TypeScript, no
 * dependencies: a few hundred thousand pixels and a hundred trees take seconds on one core, and the result is
 * a few KB of JSON.
 */
import { FaceflowError } from '@faceflow/shared';
import { SKIN_TREE_DEPTH, type SkinTree } from '../segment/skin-classifier.js';

export interface SkinTreeFitOptions {
  trees: number;
  /** shrinkage per tree (default 0.1) */
  learningRate?: number;
  /** L2 penalty on leaf values (default 1) */
  lambda?: number;
  /** quantile cut points per feature (default 48, at most 255) */
  bins?: number;
  /** least hessian (about p(1-p) summed) on each side of a split (default 20) */
  minChildWeight?: number;
  /** called after each tree, e.g. to score held-out pixels at several ensemble sizes */
  onTree?: (tree: SkinTree, index: number, base: number) => void;
}

export interface SkinTreeFit {
  base: number;
  trees: SkinTree[];
}

const NODES = (1 << SKIN_TREE_DEPTH) - 1;
const LEAVES = 1 << SKIN_TREE_DEPTH;
/** a split that sends everything left: JSON cannot hold Infinity */
export const NO_SPLIT = 1e30;

/** Fits the trees. X: n rows of `nFeat` features (row-major), y: 0/1 labels. */
export function fitSkinTrees(X: Float32Array, y: Uint8Array, nFeat: number, options: SkinTreeFitOptions): SkinTreeFit {
  const n = y.length;
  if (n === 0) throw new FaceflowError('INVALID_ARGUMENT', 'fitSkinTrees needs samples');
  if (X.length !== n * nFeat) throw new FaceflowError('INVALID_ARGUMENT', `fitSkinTrees: X has ${X.length} values, expected ${n} x ${nFeat}`);
  if (!(options.trees >= 1)) throw new FaceflowError('INVALID_ARGUMENT', `fitSkinTrees: trees must be >= 1, got ${options.trees}`);
  const lr = options.learningRate ?? 0.1;
  const lambda = options.lambda ?? 1;
  const nb = Math.min(255, options.bins ?? 48);
  const minChild = options.minChildWeight ?? 20;
  // cut points: quantiles of a strided subsample of each feature, deduplicated
  const edges: Float64Array[] = [];
  const bins = new Uint8Array(n * nFeat); // feature-major
  const stride = Math.max(1, Math.floor(n / 50000));
  for (let f = 0; f < nFeat; f++) {
    const vals: number[] = [];
    for (let i = 0; i < n; i += stride) vals.push(X[i * nFeat + f]!);
    vals.sort((a, b) => a - b);
    const cuts: number[] = [];
    for (let b = 1; b < nb; b++) {
      const v = vals[Math.floor((b / nb) * vals.length)]!;
      if (cuts.length === 0 || v > cuts[cuts.length - 1]!) cuts.push(v);
    }
    const e = Float64Array.from(cuts);
    edges.push(e);
    // bin = number of cut points below the value, so "bin <= b" is "value <= cut b"
    for (let i = 0; i < n; i++) {
      const v = X[i * nFeat + f]!;
      let lo = 0, hi = e.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (e[mid]! < v) lo = mid + 1;
        else hi = mid;
      }
      bins[f * n + i] = lo;
    }
  }
  let pos = 0;
  for (let i = 0; i < n; i++) pos += y[i]!;
  const prior = Math.min(1 - 1e-6, Math.max(1e-6, pos / n));
  const base = Math.log(prior / (1 - prior));
  const margin = new Float64Array(n).fill(base);
  const g = new Float64Array(n), h = new Float64Array(n);
  const node = new Int32Array(n);
  const trees: SkinTree[] = [];
  const nbAll = nb + 1;
  for (let t = 0; t < options.trees; t++) {
    for (let i = 0; i < n; i++) {
      const p = 1 / (1 + Math.exp(-margin[i]!));
      g[i] = p - y[i]!;
      h[i] = Math.max(1e-6, p * (1 - p));
    }
    node.fill(0);
    const tf = new Array<number>(NODES).fill(0);
    const tt = new Array<number>(NODES).fill(NO_SPLIT);
    const splitBin = new Int32Array(NODES).fill(nbAll); // bin <= splitBin goes left
    for (let level = 0; level < SKIN_TREE_DEPTH; level++) {
      const first = (1 << level) - 1, count = 1 << level;
      const G = new Float64Array(count * nFeat * nbAll), Hh = new Float64Array(count * nFeat * nbAll);
      const GT = new Float64Array(count), HT = new Float64Array(count);
      for (let i = 0; i < n; i++) {
        const m = node[i]! - first;
        const gi = g[i]!, hi = h[i]!;
        GT[m]! += gi;
        HT[m]! += hi;
        const o = m * nFeat * nbAll;
        for (let f = 0; f < nFeat; f++) {
          const b = o + f * nbAll + bins[f * n + i]!;
          G[b]! += gi;
          Hh[b]! += hi;
        }
      }
      for (let m = 0; m < count; m++) {
        const gt = GT[m]!, ht = HT[m]!;
        const parent = (gt * gt) / (ht + lambda);
        let best = 1e-9, bf = -1, bb = -1;
        for (let f = 0; f < nFeat; f++) {
          const o = m * nFeat * nbAll + f * nbAll;
          let gl = 0, hl = 0;
          const cuts = edges[f]!.length;
          for (let b = 0; b < cuts; b++) {
            gl += G[o + b]!;
            hl += Hh[o + b]!;
            const gr = gt - gl, hr = ht - hl;
            if (hl < minChild || hr < minChild) continue;
            const gain = (gl * gl) / (hl + lambda) + (gr * gr) / (hr + lambda) - parent;
            if (gain > best) { best = gain; bf = f; bb = b; }
          }
        }
        const id = first + m;
        if (bf >= 0) {
          tf[id] = bf;
          tt[id] = edges[bf]![bb]!;
          splitBin[id] = bb;
        }
      }
      for (let i = 0; i < n; i++) {
        const id = node[i]!;
        node[i] = bins[tf[id]! * n + i]! <= splitBin[id]! ? 2 * id + 1 : 2 * id + 2;
      }
    }
    const LG = new Float64Array(LEAVES), LH = new Float64Array(LEAVES);
    for (let i = 0; i < n; i++) {
      const l = node[i]! - NODES;
      LG[l]! += g[i]!;
      LH[l]! += h[i]!;
    }
    const v = Array.from({ length: LEAVES }, (_, l) => (-LG[l]! / (LH[l]! + lambda)) * lr);
    for (let i = 0; i < n; i++) margin[i]! += v[node[i]! - NODES]!;
    const tree: SkinTree = { f: tf, t: tt, v };
    trees.push(tree);
    options.onTree?.(tree, t, base);
  }
  return { base, trees };
}

/** One tree's leaf value for a feature vector (the trainer's view of skinMargin, on unflattened trees). */
export function treeValue(tree: SkinTree, x: ArrayLike<number>): number {
  let i = 0;
  while (i < NODES) i = x[tree.f[i]!]! <= tree.t[i]! ? 2 * i + 1 : 2 * i + 2;
  return tree.v[i - NODES]!;
}
