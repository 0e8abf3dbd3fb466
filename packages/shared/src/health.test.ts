import { describe, expect, it } from 'vitest';
import { HealthMonitor } from './health.js';
import { createLogger } from './logger.js';
import { createMetrics } from './metrics.js';

describe('HealthMonitor', () => {
  it('readiness_follows_each_dependency: down on a failed or unanswered check, up again when it answers; each change logged once', async () => {
    const lines: string[] = [];
    const logger = createLogger({ level: 'info', sink: (l: string) => void lines.push(l) });
    const metrics = createMetrics();
    let kafka: 'up' | 'down' | 'hangs' = 'up';
    const h = new HealthMonitor({
      dependencies: [
        { name: 'kafka', check: () => (kafka === 'up' ? Promise.resolve() : kafka === 'down' ? Promise.reject(new Error('ECONNREFUSED')) : new Promise(() => undefined)) },
        { name: 'redis', check: async () => undefined },
      ],
      timeoutMs: 50,
      logger,
      metrics,
    });
    expect(h.ok).toBe(false); // not checked yet
    await h.checkNow();
    expect(h.ok).toBe(true);
    kafka = 'down';
    await h.checkNow();
    await h.checkNow();
    expect(h.ok).toBe(false);
    expect(h.report().kafka).toMatchObject({ up: false, error: 'ECONNREFUSED' });
    expect(h.isUp('redis')).toBe(true);
    expect(await metrics.metricsText()).toMatch(/faceflow_dependency_up\{dependency="kafka"\} 0\n/);
    kafka = 'hangs';
    await h.checkNow();
    expect(h.report().kafka?.error).toMatch(/no answer within 50 ms/);
    kafka = 'up';
    await h.checkNow();
    expect(h.ok).toBe(true);
    expect(lines.filter((l) => l.includes('dependency is down')).length).toBe(1);
    expect(lines.filter((l) => l.includes('dependency is back')).length).toBe(1);
  });
});
