/**
 * Online triplet mining inside a batch of P identities x K images (FaceNet, Schroff et al. 2015, sec. 3.2),
 * on squared L2 distances between the current embeddings, the units of the triplet loss and its margin:
 *  - semi-hard (default): every anchor-positive pair takes a random negative with
 *    d(a,p) < d(a,n) < d(a,p) + alpha: farther than the positive, but still inside the margin. When there is
 *    none: if some negative is closer than the positive, the farthest of those (the least hard), as
 *    TensorFlow Addons' semi-hard loss does; if every negative is already beyond the margin, the pair adds
 *    no loss and is dropped.
 *  - hard: the nearest negative of the anchor (prone to collapse early in training, as FaceNet warns).
 *  - random: a uniformly drawn negative.
 * Plain numbers, no tensors: the trainer gathers the chosen rows into tensors for the loss.
 */
import { FaceflowError } from '@faceflow/shared';
import type { Rng } from '../eval/rng.js';

export const MINING_STRATEGIES = ['semi-hard', 'hard', 'random'] as const;
export type MiningStrategy = (typeof MINING_STRATEGIES)[number];

export interface MinedTriplets {
  anchors: number[];
  positives: number[];
  negatives: number[];
  stats: {
    /** anchor-positive pairs considered */
    pairs: number;
    /** triplets whose negative was semi-hard */
    semiHard: number;
    /** semi-hard mining: pairs with only hard negatives, given the least hard one */
    fallback: number;
    /** semi-hard mining: pairs whose negatives were all beyond the margin (no loss), left out */
    dropped: number;
  };
}

/** Squared L2 distances between the rows of a flat [n, dim] matrix: a flat [n, n] matrix. */
export function squaredDistances(embeddings: Float32Array, n: number, dim: number): Float32Array {
  if (embeddings.length !== n * dim) throw new FaceflowError('INVALID_ARGUMENT', `expected ${n}x${dim} values, got ${embeddings.length}`);
  const d = new Float32Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      let s = 0;
      for (let k = 0; k < dim; k++) {
        const v = embeddings[i * dim + k]! - embeddings[j * dim + k]!;
        s += v * v;
      }
      d[i * n + j] = s;
      d[j * n + i] = s;
    }
  }
  return d;
}

export interface MiningOptions {
  strategy: MiningStrategy;
  alpha: number;
  rng: Rng;
  /** items that are the very same sample (same image and copy) never pair as anchor and positive */
  itemKeys?: readonly (string | number)[];
}

/**
 * Triplets (indices into the batch) for every ordered anchor-positive pair of the same label.
 * @param dist flat [n, n] squared distances
 */
export function mineTriplets(dist: Float32Array, labels: readonly number[], options: MiningOptions): MinedTriplets {
  const n = labels.length;
  if (dist.length !== n * n) throw new FaceflowError('INVALID_ARGUMENT', `distance matrix has ${dist.length} values for ${n} items`);
  if (!(MINING_STRATEGIES as readonly string[]).includes(options.strategy)) {
    throw new FaceflowError('INVALID_ARGUMENT', `mining must be one of ${MINING_STRATEGIES.join(', ')}, got "${options.strategy}"`);
  }
  const { strategy, alpha, rng, itemKeys } = options;
  const out: MinedTriplets = { anchors: [], positives: [], negatives: [], stats: { pairs: 0, semiHard: 0, fallback: 0, dropped: 0 } };
  const negativesOf: number[][] = labels.map((la) => labels.flatMap((lb, j) => (lb !== la ? [j] : [])));
  const candidates: number[] = [];
  for (let a = 0; a < n; a++) {
    const negs = negativesOf[a]!;
    if (negs.length === 0) continue;
    for (let p = 0; p < n; p++) {
      if (p === a || labels[p] !== labels[a]) continue;
      if (itemKeys && itemKeys[p] === itemKeys[a]) continue;
      out.stats.pairs++;
      const dap = dist[a * n + p]!;
      let neg: number;
      if (strategy === 'random') {
        neg = rng.pick(negs);
      } else if (strategy === 'hard') {
        neg = negs[0]!;
        for (const j of negs) if (dist[a * n + j]! < dist[a * n + neg]!) neg = j;
      } else {
        candidates.length = 0;
        let leastHard = -1;
        let anyFarther = false;
        for (const j of negs) {
          const dan = dist[a * n + j]!;
          if (dan > dap && dan < dap + alpha) candidates.push(j);
          if (dan > dap) anyFarther = true;
          else if (leastHard < 0 || dan > dist[a * n + leastHard]!) leastHard = j;
        }
        if (candidates.length > 0) {
          neg = rng.pick(candidates);
          out.stats.semiHard++;
        } else if (!anyFarther && leastHard >= 0) {
          neg = leastHard;
          out.stats.fallback++;
        } else {
          out.stats.dropped++;
          continue;
        }
      }
      out.anchors.push(a);
      out.positives.push(p);
      out.negatives.push(neg);
    }
  }
  return out;
}
