/**
 * Topic names of the pipeline. One prefix (FACEFLOW_TOPIC_PREFIX, e.g. "site1") can namespace a whole
 * deployment or a test run: prefix "site1" gives "site1.frames", "site1.faces", ...
 *
 * Keys: frames, faces, matches and identity-events are keyed by cameraId (one camera's messages stay in
 * order on one partition); gallery-changes by identity. `<topic>.dlq` holds what a stage could not process
 * (see bus/dead-letter.ts); frames.dlq is listed because ingest validation feeds it directly.
 */
import { FaceflowError } from './errors.js';

export const TOPIC_BASE_NAMES = {
  frames: 'frames',
  framesDlq: 'frames.dlq',
  faces: 'faces',
  matches: 'matches',
  identityEvents: 'identity-events',
  galleryChanges: 'gallery-changes',
  /** issue 15: the audit trail of gallery access (schemas/audit-event.ts), keyed by gallery */
  audit: 'faceflow.audit',
} as const;

export type TopicKey = keyof typeof TOPIC_BASE_NAMES;
export type Topics = { readonly [K in TopicKey]: string };

/** Kafka's rule for topic names: [a-zA-Z0-9._-], at most 249 characters. */
const LEGAL = /^[a-zA-Z0-9._-]+$/;
export const DLQ_SUFFIX = '.dlq';

export function checkTopicName(name: string): string {
  if (!LEGAL.test(name) || name.length > 249 || name === '.' || name === '..') {
    throw new FaceflowError('INVALID_ARGUMENT', `"${name}" is not a legal topic name ([a-zA-Z0-9._-], at most 249 characters)`, {
      details: { topic: name },
    });
  }
  return name;
}

/** The pipeline's topic names under an optional prefix ("" for none; a trailing "." is optional). */
export function topicNames(prefix = ''): Topics {
  const p = prefix === '' ? '' : prefix.endsWith('.') ? prefix : `${prefix}.`;
  const out = {} as Record<TopicKey, string>;
  for (const [k, base] of Object.entries(TOPIC_BASE_NAMES) as [TopicKey, string][]) out[k] = checkTopicName(p + base);
  return Object.freeze(out);
}

/** The dead-letter topic of a topic: `<topic>.dlq`. */
export function dlqTopic(topic: string): string {
  return checkTopicName(topic + DLQ_SUFFIX);
}

/** The default topic names (no prefix). */
export const TOPICS: Topics = topicNames();
