import { describe, expect, it } from 'vitest';
import { parsePairs, bestThreshold, evaluatePairs, roc, auc, accuracyAt, tarAtFar } from './lfw.js';

describe('LFW pairs files', () => {
  it('parses a View 1 file and a 10-fold View 2 file', () => {
    const v1 = parsePairs('2\nA 1 2\nB 1 3\nA 1 C 2\nD 4 E 1\n');
    expect(v1.kind).toBe('view1');
    expect(v1.pairs.map((p) => p.same)).toEqual([true, true, false, false]);
    expect(v1.pairs[2]!.b).toEqual({ name: 'C', index: 2 });
    const lines = ['2 1'];
    for (let f = 0; f < 2; f++) lines.push(`A ${f + 1} ${f + 2}`, `A ${f + 1} B ${f + 1}`);
    const v2 = parsePairs(lines.join('\n'));
    expect(v2).toMatchObject({ kind: 'folds', folds: 2 });
    expect(v2.pairs.map((p) => p.fold)).toEqual([0, 0, 1, 1]);
  });
  it('names the problem in a malformed file', () => {
    expect(() => parsePairs('x\n')).toThrow(/first line/);
    expect(() => parsePairs('2\nA 1 2\n')).toThrow(/expected 4 pairs/);
    expect(() => parsePairs('1\nA 1 2\nA x B 2\n')).toThrow(/line 3/);
  });
});

describe('threshold, ROC and cross-validation', () => {
  const scored = [
    { distance: 0.1, same: true }, { distance: 0.2, same: true }, { distance: 0.35, same: true }, { distance: 0.6, same: true },
    { distance: 0.3, same: false }, { distance: 0.5, same: false }, { distance: 0.7, same: false }, { distance: 0.9, same: false },
  ];
  it('finds the accuracy-optimal threshold', () => {
    const b = bestThreshold(scored);
    expect(b.accuracy).toBe(6 / 8);
    expect(accuracyAt(scored, b.threshold)).toBe(6 / 8);
  });
  it('computes AUC as the probability a matched pair is closer than a mismatched one', () => {
    // count (same, diff) pairs where same < diff: 0.1,0.2 beat all 4; 0.35 beats 3; 0.6 beats 2 -> 13/16
    expect(auc(roc(scored))).toBeCloseTo(13 / 16, 10);
  });
  it('reports TAR at a FAR and whether that FAR is resolved', () => {
    const r = tarAtFar(roc(scored), 1e-3, 4);
    expect(r.tar).toBe(0.5); // below 0.3 no impostor is accepted: 2 of 4 genuine
    expect(r.resolved).toBe(false);
  });
  it('10-fold cross-validation picks each threshold without its own fold', () => {
    // fold 1 is shifted: a threshold fitted on fold 0 alone would misjudge it
    const pairs = { kind: 'folds' as const, folds: 2, pairs: [] };
    const data = [
      { distance: 0.1, same: true, fold: 0 }, { distance: 0.3, same: false, fold: 0 },
      { distance: 0.5, same: true, fold: 1 }, { distance: 0.7, same: false, fold: 1 },
    ];
    const r = evaluatePairs(pairs, data);
    expect(r.protocol).toBe('view2-10fold');
    // threshold for fold 0 comes from fold 1 (0.6): fold 0 has 0.1 same ok, 0.3 diff wrong -> 0.5
    // threshold for fold 1 comes from fold 0 (0.2): 0.5 same wrong, 0.7 diff ok -> 0.5
    expect(r.folds!.map((f) => f.accuracy)).toEqual([0.5, 0.5]);
    expect(r.accuracy).toBe(0.5);
  });
});
