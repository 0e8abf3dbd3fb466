import type { Metrics } from '../observability.js';
import type { BatchHandler } from './types.js';

/** Counts consumed messages and times handler calls (faceflow_bus_consumed_messages_total, faceflow_bus_handler_seconds). */
export function instrumentHandler(handler: BatchHandler, metrics: Metrics | undefined, groupId: string): BatchHandler {
  if (!metrics) return handler;
  const consumed = metrics.counter({
    name: 'bus_consumed_messages_total',
    help: 'Messages handed to a subscription handler (redeliveries included)',
    labelNames: ['topic', 'group'] as const,
  });
  const seconds = metrics.histogram({
    name: 'bus_handler_seconds',
    help: 'Duration of one handler call (one batch), retries and dead-lettering included',
    labelNames: ['topic', 'group', 'outcome'] as const,
  });
  return async (batch, ctx) => {
    consumed.inc({ topic: batch.topic, group: groupId }, batch.messages.length);
    const end = seconds.startTimer({ topic: batch.topic, group: groupId });
    try {
      await handler(batch, ctx);
      end({ outcome: 'ok' });
    } catch (e) {
      end({ outcome: 'error' });
      throw e;
    }
  };
}

export function publishCounter(metrics: Metrics | undefined): ((topic: string, n: number) => void) | undefined {
  if (!metrics) return undefined;
  const c = metrics.counter({ name: 'bus_published_messages_total', help: 'Messages published', labelNames: ['topic'] as const });
  return (topic, n) => c.inc({ topic }, n);
}
