import { describe, expect, it } from 'vitest';
import { FaceflowError } from '../errors.js';
import { createMetrics } from '../metrics.js';
import { Outbox } from './outbox.js';
import type { OutgoingMessage } from './types.js';

const msg = (s: string): OutgoingMessage => ({ key: 'cam', value: Buffer.from(s) });
const fast = { initialMs: 1, maxMs: 5, factor: 2, jitter: 0 };

describe('Outbox', () => {
  it('a_message_emitted_outside_a_batch_is_retried_until_published_in_order_exactly_once', async () => {
    const metrics = createMetrics();
    const out: string[] = [];
    let failures = 5;
    const gauge: number[] = [];
    const outbox = new Outbox({
      publish: async (_t, m) => {
        gauge.push(Number(/faceflow_alerts_pending_events (\d+)/.exec(await metrics.metricsText())![1]));
        if (failures-- > 0) throw new FaceflowError('TRANSPORT', 'broker down');
        out.push(...m.map((x) => x.value.toString()));
      },
      pendingMetric: 'alerts_pending_events',
      backoff: fast,
      metrics,
    });
    outbox.add([{ topic: 'events', messages: [msg('a'), msg('b')] }]);
    outbox.add([{ topic: 'events', messages: [msg('c')] }, { topic: 'events', messages: [] }]);
    expect(outbox.pending).toBe(3);
    await outbox.idle();
    expect(out).toEqual(['a', 'b', 'c']);
    expect(outbox.pending).toBe(0);
    expect(Math.max(...gauge)).toBe(3);
    expect(await metrics.metricsText()).toMatch(/faceflow_alerts_pending_events 0\n/);
  });

  it('drops only what cannot ever be published (a non-retriable error), counted', async () => {
    const metrics = createMetrics();
    const out: string[] = [];
    const outbox = new Outbox({
      publish: async (_t, m) => {
        if (m[0]!.value.toString() === 'huge') throw new FaceflowError('TRANSPORT', 'message too large', { retriable: false });
        out.push(m[0]!.value.toString());
      },
      pendingMetric: 'alerts_pending_events',
      backoff: fast,
      metrics,
    });
    outbox.add([{ topic: 'events', messages: [msg('huge')] }, { topic: 'events', messages: [msg('ok')] }]);
    await outbox.idle();
    expect(out).toEqual(['ok']);
    expect(await metrics.metricsText()).toMatch(/faceflow_alerts_unpublishable_total 1\n/);
  });

  it('close waits for the pending messages within the grace period', async () => {
    let down = true;
    const out: string[] = [];
    const outbox = new Outbox({
      publish: async (_t, m) => {
        if (down) throw new FaceflowError('TRANSPORT', 'broker down');
        out.push(m[0]!.value.toString());
      },
      backoff: fast,
    });
    outbox.add([{ topic: 'events', messages: [msg('a')] }]);
    setTimeout(() => (down = false), 20);
    await outbox.close(5000);
    expect(out).toEqual(['a']);
  });
});
