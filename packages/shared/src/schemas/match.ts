/**
 * Match v1: the matcher's opinion about one face of one frame: which track it belongs to and how it
 * compares to the gallery. Identity is decided per track downstream (IdentityEvent); here `identity` is
 * only this frame's best candidate above the threshold, or null ("unknown" is an answer, not an error).
 * Keyed by cameraId.
 *
 * `track` (optional, added in v1 without a bump) is the matcher's running decision for the whole track the
 * face belongs to (from the track's best faces, not this frame alone): what the alerts stage turns into
 * identity events.
 *
 * `track.unknownCluster` (optional, added in v1 without a bump, issue 14): for an unknown track that resembles
 * earlier unknown tracks, the matcher's recurring-stranger cluster ("the same unknown person again").
 */
import { defineJsonSchema } from './codec.js';
import type { Box } from '../geometry.js';
import { readBox } from './face.js';
import { ID_PATTERN } from './frame.js';
import type { FieldReader } from './validate.js';

export interface MatchCandidate {
  identity: string;
  /** Similarity (cosine of L2-normalised embeddings), -1..1. */
  score: number;
}

export interface TrackDecision {
  /** The track's identity so far, or null for unknown. */
  identity: string | null;
  /** 0..1: how sure the matcher is of `identity` (of "unknown" when identity is null). */
  confidence: number;
  /** Capture time of the track's first face, ms since the epoch. */
  startTs: number;
  /** Faces in the track so far (this one included). */
  faces: number;
  /**
   * Why the identity is what it is: match | above-threshold | ambiguous | empty-gallery | pending |
   * low-quality (every face of the track so far is under the matcher's quality floor: not compared, not named).
   */
  reason: string;
  /** The reference of the track's best face crop, when crops are stored. */
  bestCropRef?: string;
  /** An unknown track's recurring-stranger cluster (issue 14), when it resembles earlier unknown tracks. */
  unknownCluster?: UnknownClusterRef;
}

/** A recurring-stranger cluster as messages carry it: its stable id, how many ended tracks it holds, and when. */
export interface UnknownClusterRef {
  /** stable while the matcher runs (a merged cluster keeps the older id) */
  id: string;
  /** ended unknown tracks in the cluster (within the retention) */
  members: number;
  /** capture time of the cluster's oldest and newest member, ms since the epoch */
  firstSeen: number;
  lastSeen: number;
}

/** Reads an UnknownClusterRef (the Match and IdentityEvent codecs share it). */
export function readUnknownClusterRef(r: FieldReader): UnknownClusterRef {
  const c: UnknownClusterRef = {
    id: r.string('id', { max: 256 }),
    members: r.number('members', { integer: true, min: 1 }),
    firstSeen: r.timestamp('firstSeen'),
    lastSeen: r.timestamp('lastSeen'),
  };
  if (c.lastSeen < c.firstSeen) throw r.fail('lastSeen', 'must be >= firstSeen');
  return c;
}

export interface Match {
  frameId: string;
  cameraId: string;
  captureTs: number;
  faceIndex: number;
  trackId: string;
  box: Box;
  /** Best candidate at or above the threshold, or null for unknown. */
  identity: string | null;
  /** Score of the best candidate (-1..1), or null when the gallery was empty. */
  score: number | null;
  /** Top-k candidates, best first; may be empty. */
  candidates: MatchCandidate[];
  quality: number;
  /** The gallery version the face was compared against. */
  galleryVersion: number;
  cropRef?: string;
  track?: TrackDecision;
}

export const MatchSchema = defineJsonSchema<Match>('match', 1, (r) => {
  const candidates = r.objects('candidates', { max: 100 }).map((c) => ({
    identity: c.string('identity', { max: 256 }),
    score: c.number('score', { min: -1.001, max: 1.001 }),
  }));
  for (let i = 1; i < candidates.length; i++) {
    if (candidates[i]!.score > candidates[i - 1]!.score) throw r.fail(`candidates[${i}].score`, 'must not exceed the previous one (best first)');
  }
  const m: Match = {
    frameId: r.string('frameId', { max: 256 }),
    cameraId: r.string('cameraId', { max: 256, pattern: ID_PATTERN }),
    captureTs: r.timestamp('captureTs'),
    faceIndex: r.number('faceIndex', { integer: true, min: 0 }),
    trackId: r.string('trackId', { max: 256 }),
    box: readBox(r.object('box')),
    identity: r.nullableString('identity', { max: 256 }),
    score: r.raw('score') === null ? null : r.number('score', { min: -1.001, max: 1.001 }),
    candidates,
    quality: r.number('quality', { min: 0, max: 1 }),
    galleryVersion: r.number('galleryVersion', { integer: true, min: 0 }),
  };
  const cropRef = r.optionalString('cropRef', { max: 1024 });
  if (cropRef !== undefined) m.cropRef = cropRef;
  if (r.has('track')) {
    const t = r.object('track');
    const track: TrackDecision = {
      identity: t.nullableString('identity', { max: 256 }),
      confidence: t.number('confidence', { min: 0, max: 1 }),
      startTs: t.timestamp('startTs'),
      faces: t.number('faces', { integer: true, min: 1 }),
      reason: t.string('reason', { max: 64 }),
    };
    const best = t.optionalString('bestCropRef', { max: 1024 });
    if (best !== undefined) track.bestCropRef = best;
    if (t.has('unknownCluster')) track.unknownCluster = readUnknownClusterRef(t.object('unknownCluster'));
    if (track.startTs > m.captureTs) throw t.fail('startTs', 'must be <= captureTs');
    m.track = track;
  }
  return m;
});
