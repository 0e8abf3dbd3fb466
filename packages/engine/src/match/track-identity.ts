/**
 * The one track-identity rule (issue 13; DESIGN: identity is decided per track, not per frame). Used by the
 * matcher's tracker (services/matcher) and by the redaction tracker (redact.ts RedactionTracker):
 *
 * - a track's embedding is the L2-normalised mean of its faces' embeddings (trackMean): averaging over a
 *   track's frames cancels much of the pose and blur noise of single frames;
 * - that mean is identified against the gallery (identify(): threshold, then margin; unknown is an answer);
 * - with `support` (the faces the mean stands for), a majority of them must, each on its own, have the same
 *   nearest identity within the threshold: the mean must not speak for faces that disagree (a track that
 *   wrongly merged two people, or one lucky mean, stays unknown rather than naming one of them).
 */
import { identify, type IdentifyOptions } from './decide.js';
import type { Gallery } from './gallery.js';

/** What the rule needs of a gallery. */
export type TrackGallery = Pick<Gallery, 'size' | 'search'>;

export interface TrackIdentity {
  identity: string | null;
  /** Distance of the track's mean embedding to the nearest identity (null: empty gallery). */
  distance: number | null;
  confidence: number;
  reason: 'match' | 'above-threshold' | 'ambiguous' | 'empty-gallery' | 'low-quality';
}

export interface TrackRule {
  threshold: number;
  /** identify's margin (default identify's, 0.03) */
  margin?: number;
}

/** Distance -> confidence in 0..1: 1 at distance 0, 0.5 at the threshold, 0 at twice the threshold. */
export function matchConfidence(distance: number, threshold: number): number {
  return Math.min(1, Math.max(0, 1 - distance / (2 * threshold)));
}

/** The decision for faces that are all under the quality floor: not compared, so not named. */
export const LOW_QUALITY_DECISION: TrackIdentity = Object.freeze({ identity: null, distance: null, confidence: 0, reason: 'low-quality' });

/**
 * A track's embedding from the sum of its faces' embeddings: the sum L2-normalised, or null when the faces
 * cancel out (no direction to compare: norm <= `minNorm`).
 */
export function trackMean(sum: Float32Array, minNorm = 1e-6): Float32Array | null {
  let n = 0;
  for (let i = 0; i < sum.length; i++) n += sum[i]! * sum[i]!;
  n = Math.sqrt(n);
  if (!(n > minNorm)) return null;
  const m = new Float32Array(sum.length);
  for (let i = 0; i < sum.length; i++) m[i] = sum[i]! / n;
  return m;
}

/** The sum of embeddings of one size (the first's). */
export function embeddingSum(embeddings: readonly Float32Array[]): Float32Array {
  const dim = embeddings[0]!.length;
  const s = new Float32Array(dim);
  for (const e of embeddings) for (let i = 0; i < dim; i++) s[i]! += e[i]!;
  return s;
}

/** The identity of a track's mean embedding against the gallery (see the rule above). */
export function decideTrackIdentity(mean: Float32Array, gallery: TrackGallery | undefined, o: TrackRule, support?: readonly Float32Array[]): TrackIdentity {
  if (!gallery || gallery.size === 0) return { identity: null, distance: null, confidence: 1, reason: 'empty-gallery' };
  const options: IdentifyOptions = { threshold: o.threshold, ...(o.margin !== undefined ? { margin: o.margin } : {}) };
  const r = identify(mean, gallery, options);
  if (r.identity !== null && support && support.length > 1) {
    let agree = 0;
    for (const e of support) {
      const s = gallery.search(e, 1)[0]!;
      if (s.name === r.identity && s.distance < o.threshold) agree++;
    }
    if (agree * 2 <= support.length) {
      const named = matchConfidence(r.distance, o.threshold);
      return { identity: null, distance: r.distance, confidence: 1 - named, reason: 'ambiguous' };
    }
  }
  const named = matchConfidence(r.distance, o.threshold);
  return r.identity !== null
    ? { identity: r.identity, distance: r.distance, confidence: named, reason: 'match' }
    : { identity: null, distance: r.distance, confidence: 1 - named, reason: r.reason === 'ambiguous' ? 'ambiguous' : 'above-threshold' };
}
