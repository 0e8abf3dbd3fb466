/**
 * The failure policy of every subscription, as a wrapper around a batch handler:
 *
 * - a retriable FaceflowError (BACKEND_UNAVAILABLE, TRANSPORT, STORE_UNAVAILABLE, TIMEOUT, OVERLOADED, or
 *   any error constructed with retriable: true) re-runs the handler on the not-yet-processed messages,
 *   with exponential backoff, up to `maxAttempts` (default: no limit; the partition waits, nothing is
 *   lost, order is kept). When a finite limit is reached the message is dead-lettered like below.
 * - a non-retriable error (bad input; also any non-FaceflowError, wrapped as INTERNAL, so a poison
 *   message cannot loop) on a batch of several messages re-runs them one at a time to find the culprit(s)
 *   (messages the handler marked processed are skipped), then publishes each failing message unchanged
 *   (same key, value and headers) to `<topic>.dlq` with headers naming its origin and the error, counts
 *   it, and moves on: the stream goes on and the offset is committed past it.
 * - while the subscription is closing (signal aborted), errors propagate: nothing is committed, the
 *   messages are redelivered to the next consumer.
 */
import { FaceflowError, toFaceflowError } from '../errors.js';
import { silentLogger, type Logger } from '../observability.js';
import type { Metrics } from '../observability.js';
import { dlqTopic as defaultDlqTopic } from '../topics.js';
import { backoffMs, DEFAULT_BACKOFF, sleep, type BackoffOptions } from './retry.js';
import type { Batch, BatchHandler, ConsumedMessage, HandlerContext, OutgoingMessage } from './types.js';

/** Headers added to a dead-lettered message (its original headers are kept). */
export const DLQ_HEADERS = {
  originTopic: 'faceflow-origin-topic',
  originPartition: 'faceflow-origin-partition',
  originOffset: 'faceflow-origin-offset',
  originTimestamp: 'faceflow-origin-timestamp',
  errorCode: 'faceflow-error-code',
  errorMessage: 'faceflow-error-message',
  errorRetriable: 'faceflow-error-retriable',
  attempts: 'faceflow-attempts',
  failedAt: 'faceflow-failed-at',
  groupId: 'faceflow-consumer-group',
} as const;

export interface DeadLetterOptions {
  /** How to publish to the dead-letter topic (the bus's own publish). */
  publish: (topic: string, messages: OutgoingMessage[]) => Promise<void>;
  /** The consumer group, recorded in the DLQ headers and logs. */
  groupId: string;
  /** Maps a topic to its dead-letter topic (default `<topic>.dlq`). */
  dlqTopic: (topic: string) => string;
  /** Attempts for a retriable failure before dead-lettering it (default Infinity: retry until it works). */
  maxAttempts: number;
  backoff: BackoffOptions;
  logger: Logger;
  metrics?: Metrics;
}

const MAX_HEADER_MESSAGE = 1000;

export function withDeadLetter(handler: BatchHandler, options: Partial<DeadLetterOptions> & Pick<DeadLetterOptions, 'publish' | 'groupId'>): BatchHandler {
  const o: DeadLetterOptions = {
    dlqTopic: defaultDlqTopic,
    maxAttempts: Infinity,
    backoff: DEFAULT_BACKOFF,
    logger: silentLogger,
    ...options,
  };
  const retries = o.metrics?.counter({
    name: 'bus_handler_retries_total',
    help: 'Handler runs retried after a retriable error',
    labelNames: ['topic', 'group', 'code'] as const,
  });
  const dead = o.metrics?.counter({
    name: 'bus_dead_letters_total',
    help: 'Messages moved to a dead-letter topic',
    labelNames: ['topic', 'group', 'code'] as const,
  });

  const deadLetter = async (m: ConsumedMessage, err: FaceflowError, attempts: number, ctx: HandlerContext): Promise<void> => {
    const target = o.dlqTopic(m.topic);
    const headers = {
      ...m.headers,
      [DLQ_HEADERS.originTopic]: m.topic,
      [DLQ_HEADERS.originPartition]: String(m.partition),
      [DLQ_HEADERS.originOffset]: m.offset,
      [DLQ_HEADERS.originTimestamp]: String(m.timestamp),
      [DLQ_HEADERS.errorCode]: err.code,
      [DLQ_HEADERS.errorMessage]: err.message.slice(0, MAX_HEADER_MESSAGE),
      [DLQ_HEADERS.errorRetriable]: String(err.retriable),
      [DLQ_HEADERS.attempts]: String(attempts),
      [DLQ_HEADERS.failedAt]: String(Date.now()),
      [DLQ_HEADERS.groupId]: o.groupId,
    };
    for (let attempt = 1; ; attempt++) {
      try {
        await o.publish(target, [{ key: m.key, value: m.value, headers }]);
        break;
      } catch (e) {
        if (ctx.signal.aborted) throw e;
        const pe = toFaceflowError(e, 'TRANSPORT');
        o.logger.warn('dead-letter publish failed; retrying', { dlq: target, attempt, err: pe });
        await sleep(backoffMs(attempt, o.backoff), ctx.signal);
      }
    }
    ctx.markProcessed(m);
    dead?.inc({ topic: m.topic, group: o.groupId, code: err.code });
    o.logger.warn('message dead-lettered', {
      topic: m.topic,
      partition: m.partition,
      offset: m.offset,
      key: m.key,
      dlq: target,
      group: o.groupId,
      code: err.code,
      error: err.message,
      details: err.details,
      attempts,
    });
  };

  return async (batch: Batch, ctx: HandlerContext): Promise<void> => {
    const processed = new Set<string>();
    const inner: HandlerContext = {
      signal: ctx.signal,
      heartbeat: () => ctx.heartbeat(),
      markProcessed: (m) => {
        processed.add(m.offset);
        ctx.markProcessed(m);
      },
    };
    const pending = (msgs: ConsumedMessage[]): ConsumedMessage[] => msgs.filter((m) => !processed.has(m.offset));

    const attempt = async (msgs: ConsumedMessage[]): Promise<void> => {
      let remaining = pending(msgs);
      for (let n = 1; remaining.length > 0; n++) {
        try {
          await handler({ topic: batch.topic, partition: batch.partition, messages: remaining }, inner);
          for (const m of remaining) inner.markProcessed(m);
          return;
        } catch (e) {
          if (ctx.signal.aborted) throw e;
          const err = toFaceflowError(e);
          remaining = pending(remaining);
          if (remaining.length === 0) return;
          if (err.retriable && n < o.maxAttempts) {
            retries?.inc({ topic: batch.topic, group: o.groupId, code: err.code });
            const delay = backoffMs(n, o.backoff);
            o.logger.warn('handler failed with a retriable error; retrying', {
              topic: batch.topic,
              partition: batch.partition,
              firstOffset: remaining[0]!.offset,
              messages: remaining.length,
              group: o.groupId,
              code: err.code,
              error: err.message,
              attempt: n,
              delayMs: delay,
            });
            await sleep(delay, ctx.signal);
            continue;
          }
          if (remaining.length === 1) {
            await deadLetter(remaining[0]!, err, n, inner);
            return;
          }
          // several messages, one failure: find the culprit(s) one message at a time, in order
          for (const m of remaining) await attempt([m]);
          return;
        }
      }
    };

    await attempt(batch.messages);
  };
}

/**
 * Turns a per-message function into a batch handler that marks each message processed once its function
 * resolved, so that when a later message of the batch fails, the earlier ones are not run again.
 */
export function eachMessage(fn: (message: ConsumedMessage, ctx: HandlerContext) => Promise<void>): BatchHandler {
  return async (batch, ctx) => {
    for (const m of batch.messages) {
      await fn(m, ctx);
      ctx.markProcessed(m);
    }
  };
}
