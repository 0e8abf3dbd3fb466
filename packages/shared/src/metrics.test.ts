import { describe, expect, it } from 'vitest';
import { createMetrics, metricsText, processMetrics } from './metrics.js';

describe('metrics', () => {
  it('prefixes names with faceflow_ and exposes text', async () => {
    const m = createMetrics();
    const c = m.counter({ name: 'frames_total', help: 'frames seen', labelNames: ['camera'] as const });
    c.inc({ camera: 'c1' });
    c.inc({ camera: 'c1' }, 2);
    const h = m.histogram({ name: 'faceflow_embed_seconds', help: 'embedding time', buckets: [0.1, 1] });
    h.observe({}, 0.5);
    const g = m.gauge({ name: 'queue_depth', help: 'depth' });
    g.set({}, 7);
    const text = await m.metricsText();
    expect(text).toContain('faceflow_frames_total{camera="c1"} 3');
    expect(text).toContain('faceflow_embed_seconds_bucket{le="1"} 1');
    expect(text).toContain('faceflow_queue_depth 7');
    expect(text).not.toContain('faceflow_faceflow_');
    expect(m.contentType).toContain('text/plain');
  });

  it('returns the same metric for the same name; refuses another type or labels', async () => {
    const m = createMetrics();
    m.counter({ name: 'x_total', help: 'x', labelNames: ['a'] as const }).inc({ a: '1' });
    m.counter({ name: 'x_total', help: 'x', labelNames: ['a'] as const }).inc({ a: '1' });
    expect(await m.metricsText()).toContain('faceflow_x_total{a="1"} 2');
    expect(() => m.gauge({ name: 'x_total', help: 'x', labelNames: ['a'] as const })).toThrow(/another type/);
    expect(() => m.counter({ name: 'x_total', help: 'x', labelNames: ['b'] as const })).toThrow(/other labels/);
  });

  it('keeps registries apart; timers observe seconds', async () => {
    const a = createMetrics();
    const b = createMetrics({ defaultLabels: { service: 'b' } });
    a.counter({ name: 'only_in_a_total', help: 'a' }).inc();
    const end = b.histogram({ name: 'op_seconds', help: 'op' }).startTimer();
    expect(end()).toBeGreaterThanOrEqual(0);
    expect(await b.metricsText()).not.toContain('only_in_a_total');
    expect(await b.metricsText()).toContain('service="b"');
  });

  it('rejects illegal names', () => {
    expect(() => createMetrics().counter({ name: 'bad-name', help: 'x' })).toThrow(/legal metric name/);
  });

  it('has one process-wide registry with default process metrics', async () => {
    expect(processMetrics()).toBe(processMetrics());
    expect(await metricsText()).toContain('faceflow_process_cpu_seconds_total');
  });

  it('a_gauge_with_read_shows_the_current_value_at_every_scrape', async () => {
    const m = createMetrics();
    let v = 3;
    m.gauge({ name: 'mirrored', help: 'read at scrape time', read: () => v });
    expect(await m.metricsText()).toMatch(/faceflow_mirrored 3\n/);
    v = 10;
    expect(await m.metricsText()).toMatch(/faceflow_mirrored 10\n/);
  });
});
