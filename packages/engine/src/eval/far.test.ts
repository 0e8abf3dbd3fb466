import { describe, expect, it } from 'vitest';
import { calibrateFar, distanceAtFar, impostorDistances } from './far.js';
import { Rng } from './rng.js';

describe('the distance at FAR 1e-3', () => {
  it('allows floor(1e-3 x M) false accepts: the threshold is the (k+1)-th smallest impostor distance', () => {
    // 3000 impostors at 0.001, 0.002, ... 3.000, shuffled: k = 3, threshold 0.004, the 3 below it accepted
    const d = Array.from({ length: 3000 }, (_, i) => (i + 1) / 1000);
    new Rng(1).shuffle(d);
    expect(distanceAtFar(d)).toEqual({ distance: 0.004, falseAccepts: 3, resolved: true });
    // 2999 impostors: k = 2
    expect(distanceAtFar(d.filter((x) => x !== 3))).toMatchObject({ distance: 0.003, falseAccepts: 2, resolved: true });
    // exactly 1000: k = 1 (1e-3 x 1000 is 1, not 0.9999...)
    expect(distanceAtFar(Array.from({ length: 1000 }, (_, i) => 1 + i / 1000))).toEqual({ distance: 1.001, falseAccepts: 1, resolved: true });
  });

  it('with fewer than 1000 impostor pairs: the smallest impostor distance, unresolved', () => {
    expect(distanceAtFar([0.9, 0.7, 1.2, 0.8])).toEqual({ distance: 0.7, falseAccepts: 0, resolved: false });
    expect(distanceAtFar([0.5])).toEqual({ distance: 0.5, falseAccepts: 0, resolved: false });
    expect(() => distanceAtFar([])).toThrow(/at least one impostor pair/);
  });

  it('ties at the threshold are not accepted (decisions are distance < threshold)', () => {
    const d = [...Array.from({ length: 1998 }, () => 1), 0.2, 0.2];
    // k = 2: the third smallest is 1 (the two 0.2s are accepted)
    expect(distanceAtFar(d)).toEqual({ distance: 1, falseAccepts: 2, resolved: true });
    const tied = [0.3, 0.3, 0.3, ...Array.from({ length: 1997 }, () => 1)];
    // k = 2 lands on a 0.3: strictly below it nothing, so 0 false accepts (FAR only falls)
    expect(distanceAtFar(tied)).toEqual({ distance: 0.3, falseAccepts: 0, resolved: true });
  });

  it('impostor pairs: every pair of two identities, or a seeded sample above maxPairs', () => {
    // 4 rows in 2-d: identities 0, 0, 1, 2 -> 6 pairs, minus 1 genuine = 5 impostor pairs
    const emb = Float32Array.from([0, 0, 0, 1, 3, 4, 1, 0]);
    const ids = [0, 0, 1, 2];
    const all = impostorDistances(emb, 2, ids, { seed: 1 });
    expect(all.sampled).toBe(false);
    expect(Array.from(all.distances).sort()).toEqual([1, Math.sqrt(2), Math.sqrt(9 + 9), 5, Math.sqrt(4 + 16)].sort());
    const a = impostorDistances(emb, 2, ids, { seed: 7, maxPairs: 3 });
    const b = impostorDistances(emb, 2, ids, { seed: 7, maxPairs: 3 });
    expect(a.sampled).toBe(true);
    expect(a.distances).toHaveLength(3);
    expect(Array.from(a.distances)).toEqual(Array.from(b.distances));
    for (const x of a.distances) expect(Array.from(all.distances)).toContain(x);
    expect(calibrateFar(emb, 2, ids, { seed: 1 })).toEqual({ far: 1e-3, distance: 1, impostorPairs: 5, falseAccepts: 0, resolved: false, sampled: false });
    expect(impostorDistances(emb, 2, [3, 3, 3, 3], { seed: 1 }).distances).toHaveLength(0);
    expect(() => impostorDistances(emb, 3, ids, { seed: 1 })).toThrow(/expected 4 x 3/);
  });
});
