import { describe, expect, it } from 'vitest';
import { backoffMs, sleep } from './retry.js';

describe('backoff', () => {
  it('grows exponentially up to the cap, with bounded jitter', () => {
    const o = { initialMs: 100, maxMs: 1000, factor: 2, jitter: 0 };
    expect([1, 2, 3, 4, 5, 6].map((n) => backoffMs(n, o))).toEqual([100, 200, 400, 800, 1000, 1000]);
    const j = { ...o, jitter: 0.2 };
    expect(backoffMs(1, j, () => 0)).toBe(80);
    expect(backoffMs(1, j, () => 1)).toBe(120);
  });

  it('sleep rejects with a retriable error when aborted', async () => {
    const ac = new AbortController();
    const p = sleep(10_000, ac.signal);
    ac.abort();
    await expect(p).rejects.toMatchObject({ code: 'TRANSPORT', retriable: true });
    await expect(sleep(5)).resolves.toBeUndefined();
  });
});
