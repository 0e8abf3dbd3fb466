import { describe, expect, it } from 'vitest';
import { Batcher } from './batcher.js';

const tick = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('Batcher', () => {
  it('starts a batch when it is full, without waiting', async () => {
    const sizes: number[] = [];
    const b = new Batcher<number, number>({ maxBatch: 3, maxWaitMs: 10_000, run: async (xs) => (sizes.push(xs.length), xs.map((x) => x * 2)) });
    const out = await Promise.all([1, 2, 3].map((x) => b.submit(x)));
    expect(out).toEqual([2, 4, 6]);
    expect(sizes).toEqual([3]);
  });

  it('starts a partial batch after maxWait, gathering what came from several callers', async () => {
    const sizes: number[] = [];
    const b = new Batcher<string, string>({ maxBatch: 8, maxWaitMs: 30, run: async (xs) => (sizes.push(xs.length), xs) });
    const p1 = b.submit('cam1-f1');
    await tick(5);
    const p2 = b.submit('cam2-f1');
    expect(sizes).toEqual([]);
    expect(await Promise.all([p1, p2])).toEqual(['cam1-f1', 'cam2-f1']);
    expect(sizes).toEqual([2]);
  });

  it('queues while a batch runs, then runs the queue at once as larger batches', async () => {
    const sizes: number[] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const b = new Batcher<number, number>({
      maxBatch: 4,
      maxWaitMs: 0,
      run: async (xs) => {
        sizes.push(xs.length);
        if (sizes.length === 1) await gate;
        return xs;
      },
    });
    const first = b.submit(0);
    const rest = [1, 2, 3, 4, 5].map((x) => b.submit(x));
    expect(b.pending).toBe(5);
    release();
    await Promise.all([first, ...rest]);
    expect(sizes).toEqual([1, 4, 1]);
  });

  it('fails only the items that failed', async () => {
    const b = new Batcher<number, number>({ maxBatch: 3, maxWaitMs: 0, run: async (xs) => xs.map((x) => (x === 2 ? new Error('bad') : x)) });
    const r = await Promise.allSettled([1, 2, 3].map((x) => b.submit(x)));
    expect(r.map((x) => x.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
  });
});
