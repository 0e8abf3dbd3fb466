/**
 * Decisions: verify (1:1) and identify (1:N or unknown), the notebook's `verify` and `who_is_it` with
 * calibrated thresholds instead of a hard-coded 0.7, and a margin rule so that a stranger who is about as
 * close to two enrolled people is not named as either (unknown is an answer, not an error).
 */
import { FaceflowError, l2 } from '@faceflow/shared';
import type { Gallery, IdentityDistance } from './gallery.js';

/**
 * What identify needs of a gallery: its k-nearest search (a Gallery, or one of its methods in a benchmark).
 * identify passes its rule, so an approximate index can check that its answer gives the same decision
 * (issue 14); a search may ignore it.
 */
export type Searchable = Pick<Gallery, 'search'>;

export type DecisionReason = 'match' | 'above-threshold' | 'ambiguous';

/** The rule an identify() decision follows, as a search index is told it. */
export interface DecisionRule {
  threshold: number;
  margin: number;
}

/** The one definition of the 1:N decision: the nearest identity's distance vs threshold, then the margin over the second. */
export function decisionOf(distance: number, secondDistance: number | null, rule: DecisionRule): DecisionReason {
  if (distance >= rule.threshold) return 'above-threshold';
  if (secondDistance !== null && secondDistance - distance < rule.margin) return 'ambiguous';
  return 'match';
}

/** The L2 distance of two embeddings (shared's `l2`, the one definition), refusing two of different sizes. */
export function l2Distance(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) throw new FaceflowError('INVALID_ARGUMENT', `embedding sizes differ: ${a.length} vs ${b.length}`);
  return l2(a, b);
}

export interface VerifyResult {
  name: string;
  distance: number;
  match: boolean;
  threshold: number;
}

/** Is this face the claimed person? Distance to the person's closest enrolled embedding vs. threshold. */
export function verify(embedding: Float32Array, name: string, gallery: Gallery, threshold: number): VerifyResult {
  const enrolled = gallery.embeddingsOf(name);
  let distance = Infinity;
  for (const e of enrolled) distance = Math.min(distance, l2Distance(embedding, e));
  return { name, distance, match: distance < threshold, threshold };
}

export interface IdentifyOptions {
  threshold: number;
  /** the best identity must beat the second-best by at least this distance (default 0.03) */
  margin?: number;
  /**
   * Nearest identities to return in `neighbours` (default 2, at least 2): a caller that also shows the
   * top candidates gets them from the same search (issue 14: at 1M identities each search costs ~10 ms).
   */
  k?: number;
}

export interface IdentifyResult {
  /** the identity, or null for unknown */
  identity: string | null;
  /** distance to the nearest identity (whether or not it was accepted) */
  distance: number;
  /** nearest identity, even when the answer is unknown */
  nearest: string;
  secondDistance: number | null;
  reason: DecisionReason;
  /** the `k` nearest identities, nearest first, at their distances (the decision is made on the first two) */
  neighbours: IdentityDistance[];
}

export function identify(embedding: Float32Array, gallery: Searchable, options: IdentifyOptions): IdentifyResult {
  const margin = options.margin ?? 0.03;
  if (!(margin >= 0)) throw new FaceflowError('INVALID_ARGUMENT', `margin must be >= 0, got ${margin}`);
  const k = options.k ?? 2;
  if (!(Number.isInteger(k) && k >= 1)) throw new FaceflowError('INVALID_ARGUMENT', `k must be an integer >= 1, got ${k}`);
  const rule = { threshold: options.threshold, margin };
  const neighbours = gallery.search(embedding, Math.max(2, k), rule);
  const [best, second] = neighbours;
  const secondDistance = second ? second.distance : null;
  const base = { distance: best!.distance, nearest: best!.name, secondDistance };
  const reason = decisionOf(best!.distance, secondDistance, rule);
  return { identity: reason === 'match' ? best!.name : null, ...base, reason, neighbours: neighbours.slice(0, k) };
}
