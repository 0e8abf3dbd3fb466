/**
 * AuditEvent v1 (issue 15, item 4): who did what to the gallery, when and from where: every gallery API call
 * (allowed or refused), enrolment, deletion, import and key rotation. On the audit topic (topics.ts), keyed
 * by gallery, and in the service log. It never carries a template, an image or a key: only ids (the
 * identity id, the API key's id, key ids) and the outcome.
 */
import { ERROR_CODES, type ErrorCode } from '../errors.js';
import { defineJsonSchema } from './codec.js';

export const AUDIT_ACTIONS = ['gallery.list', 'gallery.enroll', 'gallery.delete', 'gallery.import', 'gallery.export', 'gallery.rotate-key'] as const;
export type AuditAction = (typeof AUDIT_ACTIONS)[number];
export const AUDIT_OUTCOMES = ['ok', 'denied', 'failed'] as const;
export type AuditOutcome = (typeof AUDIT_OUTCOMES)[number];
export const AUDIT_ACTOR_KINDS = ['api-key', 'anonymous', 'operator'] as const;

export interface AuditEvent {
  /** random id of this event */
  id: string;
  /** when, ms since the epoch */
  ts: number;
  action: AuditAction;
  outcome: AuditOutcome;
  /** who: an API key (its id: the first 16 hex digits of its SHA-256), nobody authenticated, or an operator (OS user) */
  actorKind: (typeof AUDIT_ACTOR_KINDS)[number];
  actor: string;
  /** from where: the client address (API), or the host (a command) */
  source: string;
  /** the process that recorded it (matcher, faceflow) */
  service: string;
  /** the gallery (Redis key prefix or file) */
  gallery: string;
  /** the identity acted on, when one was */
  identity?: string;
  /** the gallery version after the change */
  version?: number;
  /** the failure's FaceflowError code (outcome failed or denied) */
  code?: ErrorCode;
  /** key rotation: the key-encryption key ids before and after */
  fromKey?: string;
  toKey?: string;
  /**
   * Erasure (issue 15 item 3): set on a `gallery.delete` that succeeded. It tells every downstream consumer
   * of faceflow's topics (identity events, matches) to erase what it holds of `identity`: faceflow erased
   * the template, its copies in the matchers and the stored thumbnails; copies outside faceflow are theirs.
   */
  tombstone?: true;
  /** Erasure: how many stored crops (thumbnails) of the identity were deleted by this process. */
  crops?: number;
}

const CODES = Object.keys(ERROR_CODES) as ErrorCode[];

export const AuditEventSchema = defineJsonSchema<AuditEvent>('audit-event', 1, (r) => {
  const e: AuditEvent = {
    id: r.string('id', { min: 1, max: 64 }),
    ts: r.timestamp('ts'),
    action: r.oneOf('action', AUDIT_ACTIONS),
    outcome: r.oneOf('outcome', AUDIT_OUTCOMES),
    actorKind: r.oneOf('actorKind', AUDIT_ACTOR_KINDS),
    actor: r.string('actor', { min: 1, max: 256 }),
    source: r.string('source', { min: 1, max: 256 }),
    service: r.string('service', { min: 1, max: 64 }),
    gallery: r.string('gallery', { min: 1, max: 1024 }),
  };
  const identity = r.optionalString('identity', { max: 256 });
  if (identity !== undefined) e.identity = identity;
  const version = r.optionalNumber('version', { integer: true, min: 0 });
  if (version !== undefined) e.version = version;
  if (r.has('code')) e.code = r.oneOf('code', CODES);
  const fromKey = r.optionalString('fromKey', { max: 64 });
  if (fromKey !== undefined) e.fromKey = fromKey;
  const toKey = r.optionalString('toKey', { max: 64 });
  if (toKey !== undefined) e.toKey = toKey;
  if (r.has('tombstone')) {
    if (r.raw('tombstone') !== true) throw r.fail('tombstone', 'must be true when present');
    e.tombstone = true;
  }
  const crops = r.optionalNumber('crops', { integer: true, min: 0 });
  if (crops !== undefined) e.crops = crops;
  return e;
});
