/**
 * IdentityEvent v1: what the system says about a person on a camera, per track: `enter` when a track
 * is confirmed, `update` when its identity or confidence changes, `exit` when it ends. `identity` is null
 * for an unknown person. Keyed by cameraId.
 *
 * `unknownCluster` (optional, added in v1 without a bump, issue 14): on an unknown person's events, the
 * matcher's recurring-stranger cluster when the track resembles earlier unknown tracks ("the same unknown
 * person again").
 */
import { defineJsonSchema } from './codec.js';
import { ID_PATTERN } from './frame.js';
import { readUnknownClusterRef, type UnknownClusterRef } from './match.js';

export const IDENTITY_EVENT_TYPES = ['enter', 'update', 'exit'] as const;
export type IdentityEventType = (typeof IDENTITY_EVENT_TYPES)[number];

export interface IdentityEvent {
  type: IdentityEventType;
  trackId: string;
  identity: string | null;
  /** 0..1. */
  confidence: number;
  cameraId: string;
  /** First and last capture time of the track so far, ms since the epoch; endTs >= startTs. */
  startTs: number;
  endTs: number;
  /**
   * Where a thumbnail of the best face is stored, or null. Null for an unknown person unless the camera is
   * exempt from redaction (FACEFLOW_REDACT_EXEMPT_CAMERAS): alerts never hands a passer-by's face on.
   */
  thumbnailRef: string | null;
  /** An unknown person's recurring-stranger cluster (issue 14); absent when none, or for a named person. */
  unknownCluster?: UnknownClusterRef;
}

export const IdentityEventSchema = defineJsonSchema<IdentityEvent>('identity-event', 1, (r) => {
  const e: IdentityEvent = {
    type: r.oneOf('type', IDENTITY_EVENT_TYPES),
    trackId: r.string('trackId', { max: 256 }),
    identity: r.nullableString('identity', { max: 256 }),
    confidence: r.number('confidence', { min: 0, max: 1 }),
    cameraId: r.string('cameraId', { max: 256, pattern: ID_PATTERN }),
    startTs: r.timestamp('startTs'),
    endTs: r.timestamp('endTs'),
    thumbnailRef: r.has('thumbnailRef') ? r.string('thumbnailRef', { max: 1024 }) : null,
  };
  if (e.endTs < e.startTs) throw r.fail('endTs', 'must be >= startTs');
  if (r.has('unknownCluster')) {
    if (e.identity !== null) throw r.fail('unknownCluster', 'is only for an unknown person (identity null)');
    e.unknownCluster = readUnknownClusterRef(r.object('unknownCluster'));
  }
  return e;
});
