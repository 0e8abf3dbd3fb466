/**
 * The identify (1:N) threshold of a trained head: the L2 distance at a false-accept rate (FAR) of 1e-3 on the
 * impostor pairs (two different people) of the validation identities, as calibration.ts's `distanceAtFar1e3`
 * is for the shipped models. verify (1:1) keeps the accuracy-optimal threshold; identify and `faceflow run`
 * use this stricter one, because every enrolled identity is one more chance to name a stranger.
 *
 * The rule. Sort the M impostor distances, d[0] <= ... <= d[M-1], and allow k = floor(far * M) false
 * accepts. A pair is accepted when its distance is < the threshold (decide.ts), so the threshold d[k] accepts
 * exactly the k nearest impostors (fewer on ties), and no larger threshold keeps the FAR <= far.
 *
 * Too few impostor pairs. With M < 1/far (fewer than 1000 for 1e-3), k is 0 and the threshold is the smallest
 * impostor distance: no false accept among the M pairs, the lowest impostor quantile that M pairs can
 * support. That is not a measured FAR of 1e-3 (zero false accepts in M pairs bounds the FAR only by about 3/M
 * at 95% confidence, the "rule of three"), so `resolved` is false, and `faceflow train` says so.
 *
 * The pairs: every impostor pair of the items when there are at most `maxPairs` (default 2 000 000), else
 * `maxPairs` pairs drawn at random (seeded: the same items and seed give the same pairs), and `sampled` says so.
 * Validation identities with a few dozen images each already give far more than 1000 impostor pairs.
 */
import { FaceflowError } from '@faceflow/shared';
import { Rng } from './rng.js';

export const IDENTIFY_FAR = 1e-3;
export const DEFAULT_MAX_IMPOSTOR_PAIRS = 2_000_000;

export interface FarCalibration {
  /** the target false-accept rate */
  far: number;
  /** the largest threshold with FAR <= far on the impostor pairs (d[k] above) */
  distance: number;
  /** impostor pairs measured (M) */
  impostorPairs: number;
  /** impostor pairs accepted at `distance` (distance strictly below it) */
  falseAccepts: number;
  /** M * far >= 1: the FAR is actually resolved by M pairs */
  resolved: boolean;
  /** the pairs are a random sample of all impostor pairs (there were more than maxPairs) */
  sampled: boolean;
}

/**
 * The rule's k: how many of `pairs` impostor pairs FAR `far` allows to be accepted, so that the threshold is the
 * (k+1)-th smallest impostor distance, d[k]. The one definition of the rule (issue 13): `distanceAtFar` here,
 * and `allPairsImpostors` (eval/lfw.ts, `faceflow eval lfw --all-pairs`), which keeps only the smallest of
 * millions of distances.
 */
export function farAcceptCount(pairs: number, far: number): number {
  // floor with a little slack, so that e.g. 1e-3 * 3000 counts 3 and not 2.9999999
  return Math.floor(far * pairs + 1e-9);
}

/** Whether `pairs` impostor pairs resolve FAR `far` (pairs * far >= 1; see the module comment). */
export function farResolved(pairs: number, far: number): boolean {
  return pairs * far >= 1 - 1e-9;
}

/** The distance at FAR `far` of sorted-or-not impostor distances (see the module comment for the rule). */
export function distanceAtFar(impostors: Float64Array | number[], far = IDENTIFY_FAR): { distance: number; falseAccepts: number; resolved: boolean } {
  const m = impostors.length;
  if (m === 0) throw new FaceflowError('INVALID_ARGUMENT', 'a FAR threshold needs at least one impostor pair (two identities)');
  if (!(far > 0 && far < 1)) throw new FaceflowError('INVALID_ARGUMENT', `far must be in (0, 1), got ${far}`);
  const sorted = Float64Array.from(impostors).sort();
  const k = Math.min(m - 1, farAcceptCount(m, far));
  const distance = sorted[k]!;
  let falseAccepts = 0;
  while (falseAccepts < m && sorted[falseAccepts]! < distance) falseAccepts++;
  return { distance, falseAccepts, resolved: farResolved(m, far) };
}

function squaredL2(emb: Float32Array, dim: number, a: number, b: number): number {
  let s = 0;
  const oa = a * dim;
  const ob = b * dim;
  for (let k = 0; k < dim; k++) {
    const v = emb[oa + k]! - emb[ob + k]!;
    s += v * v;
  }
  return s;
}

/**
 * L2 distances of impostor pairs among `ids.length` embeddings (`emb` flat, [n, dim]); `ids[i]` is the identity
 * of row i. All pairs when there are at most maxPairs, else maxPairs random ones (seeded).
 */
export function impostorDistances(
  emb: Float32Array,
  dim: number,
  ids: ArrayLike<number>,
  options: { maxPairs?: number; seed: number },
): { distances: Float64Array; sampled: boolean } {
  const n = ids.length;
  if (emb.length !== n * dim) throw new FaceflowError('INVALID_ARGUMENT', `embeddings hold ${emb.length} values, expected ${n} x ${dim}`);
  const maxPairs = options.maxPairs ?? DEFAULT_MAX_IMPOSTOR_PAIRS;
  const counts = new Map<number, number>();
  for (let i = 0; i < n; i++) counts.set(ids[i]!, (counts.get(ids[i]!) ?? 0) + 1);
  let total = (n * (n - 1)) / 2;
  for (const c of counts.values()) total -= (c * (c - 1)) / 2;
  if (total <= 0) return { distances: new Float64Array(0), sampled: false };
  if (total <= maxPairs) {
    const distances = new Float64Array(total);
    let t = 0;
    for (let a = 0; a < n; a++) {
      for (let b = a + 1; b < n; b++) if (ids[a] !== ids[b]) distances[t++] = Math.sqrt(squaredL2(emb, dim, a, b));
    }
    return { distances, sampled: false };
  }
  const rng = new Rng(options.seed);
  const distances = new Float64Array(maxPairs);
  for (let t = 0; t < maxPairs; ) {
    const a = rng.int(n);
    const b = rng.int(n);
    if (ids[a] === ids[b]) continue;
    distances[t++] = Math.sqrt(squaredL2(emb, dim, a, b));
  }
  return { distances, sampled: true };
}

/** The FAR calibration of embeddings `emb` ([n, dim], identities `ids`): see the module comment. */
export function calibrateFar(
  emb: Float32Array,
  dim: number,
  ids: ArrayLike<number>,
  options: { far?: number; maxPairs?: number; seed: number },
): FarCalibration {
  const far = options.far ?? IDENTIFY_FAR;
  const { distances, sampled } = impostorDistances(emb, dim, ids, { seed: options.seed, ...(options.maxPairs !== undefined ? { maxPairs: options.maxPairs } : {}) });
  const r = distanceAtFar(distances, far);
  return { far, distance: r.distance, impostorPairs: distances.length, falseAccepts: r.falseAccepts, resolved: r.resolved, sampled };
}
