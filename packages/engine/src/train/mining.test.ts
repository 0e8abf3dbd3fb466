import { describe, expect, it } from 'vitest';
import { Rng } from '../eval/rng.js';
import { mineTriplets, squaredDistances } from './mining.js';

/** A symmetric distance matrix from a list of [i, j, d] entries. */
function matrix(n: number, entries: Array<[number, number, number]>): Float32Array {
  const d = new Float32Array(n * n).fill(9);
  for (let i = 0; i < n; i++) d[i * n + i] = 0;
  for (const [i, j, v] of entries) {
    d[i * n + j] = v;
    d[j * n + i] = v;
  }
  return d;
}

describe('triplet mining', () => {
  it('computes squared distances', () => {
    const d = squaredDistances(Float32Array.from([0, 0, 3, 4, 1, 0]), 3, 2);
    expect(Array.from(d)).toEqual([0, 25, 1, 25, 0, 20, 1, 20, 0]);
  });

  it('semi-hard: a negative with d(a,p) < d(a,n) < d(a,p) + alpha, for every anchor-positive pair', () => {
    // items 0,1 are A; 2,3,4,5 are others. d(0,1) = 0.5.
    // from anchor 0: n=2 at 0.3 (hard), n=3 at 0.6 (semi-hard), n=4 at 0.65 (semi-hard), n=5 at 0.8 (easy)
    const labels = [0, 0, 1, 1, 2, 2];
    const d = matrix(6, [[0, 1, 0.5], [0, 2, 0.3], [0, 3, 0.6], [0, 4, 0.65], [0, 5, 0.8], [1, 2, 0.9], [1, 3, 0.9], [1, 4, 0.9], [1, 5, 0.9]]);
    const seen = new Set<number>();
    for (let seed = 0; seed < 30; seed++) {
      const t = mineTriplets(d, labels, { strategy: 'semi-hard', alpha: 0.2, rng: new Rng(seed) });
      const i = t.anchors.findIndex((a, k) => a === 0 && t.positives[k] === 1);
      const n = t.negatives[i]!;
      expect([3, 4]).toContain(n);
      seen.add(n);
      // every semi-hard triplet satisfies the definition
      t.anchors.forEach((a, k) => {
        const dap = d[a * 6 + t.positives[k]!]!;
        const dan = d[a * 6 + t.negatives[k]!]!;
        if (dan > dap) expect(dan).toBeLessThan(dap + 0.2);
        expect(labels[t.negatives[k]!]).not.toBe(labels[a]);
        expect(labels[t.positives[k]!]).toBe(labels[a]);
      });
    }
    expect(seen).toEqual(new Set([3, 4])); // a random pick among the semi-hard ones
  });

  it('semi-hard: only hard negatives -> the least hard; all beyond the margin -> dropped', () => {
    const labels = [0, 0, 1, 1];
    // anchor 0, positive 1: d = 1.0; negatives at 0.4 and 0.7 (both hard) -> 3 (0.7)
    // anchor 1, positive 0: d = 1.0; negatives at 1.5 and 1.9 (both beyond 1.0 + 0.2) -> dropped
    const d = matrix(4, [[0, 1, 1.0], [0, 2, 0.4], [0, 3, 0.7], [1, 2, 1.5], [1, 3, 1.9], [2, 3, 0.1]]);
    const t = mineTriplets(d, labels, { strategy: 'semi-hard', alpha: 0.2, rng: new Rng(1) });
    const pick = (a: number, p: number): number | undefined => {
      const i = t.anchors.findIndex((x, k) => x === a && t.positives[k] === p);
      return i < 0 ? undefined : t.negatives[i];
    };
    expect(pick(0, 1)).toBe(3);
    expect(pick(1, 0)).toBeUndefined();
    expect(t.stats.fallback).toBeGreaterThanOrEqual(1);
    expect(t.stats.dropped).toBeGreaterThanOrEqual(1);
    expect(t.stats.pairs).toBe(4);
  });

  it('hard: the nearest negative; random: any negative', () => {
    const labels = [0, 0, 1, 1, 2];
    const d = matrix(5, [[0, 1, 0.5], [0, 2, 0.3], [0, 3, 0.6], [0, 4, 0.2]]);
    const hard = mineTriplets(d, labels, { strategy: 'hard', alpha: 0.2, rng: new Rng(1) });
    const i = hard.anchors.findIndex((a, k) => a === 0 && hard.positives[k] === 1);
    expect(hard.negatives[i]).toBe(4);
    expect(hard.anchors).toHaveLength(4); // (0,1) (1,0) (2,3) (3,2)
    const seen = new Set<number>();
    for (let s = 0; s < 40; s++) {
      const r = mineTriplets(d, labels, { strategy: 'random', alpha: 0.2, rng: new Rng(s) });
      const j = r.anchors.findIndex((a, k) => a === 0 && r.positives[k] === 1);
      seen.add(r.negatives[j]!);
    }
    expect(seen).toEqual(new Set([2, 3, 4]));
  });

  it('never pairs an item with itself, nor two copies flagged as the same sample', () => {
    const labels = [0, 0, 0, 1];
    const d = matrix(4, [[0, 1, 0], [0, 2, 0.5], [1, 2, 0.5]]);
    const t = mineTriplets(d, labels, { strategy: 'random', alpha: 0.2, rng: new Rng(1), itemKeys: ['x', 'x', 'y', 'z'] });
    t.anchors.forEach((a, k) => expect(new Set([a, t.positives[k]])).not.toEqual(new Set([0, 1])));
    expect(t.anchors).toHaveLength(4); // (0,2) (2,0) (1,2) (2,1)
  });

  it('rejects an unknown strategy and a wrong-sized matrix', () => {
    expect(() => mineTriplets(new Float32Array(4), [0, 1], { strategy: 'easy' as never, alpha: 0.2, rng: new Rng(1) })).toThrow(/mining must be/);
    expect(() => mineTriplets(new Float32Array(3), [0, 1], { strategy: 'hard', alpha: 0.2, rng: new Rng(1) })).toThrow(/distance matrix/);
  });
});
