import { describe, expect, it } from 'vitest';
import { evaluateClustering, scoreClusters } from './cluster.js';

const unit = (v: number[]): Float32Array => {
  const n = Math.hypot(...v);
  return Float32Array.from(v.map((x) => x / n));
};

describe('cluster scoring', () => {
  it('a_clustering_equal_to_the_identities_scores_one_everywhere', () => {
    const s = scoreClusters(['a', 'a', 'b', 'c'], ['1', '1', '2', '3']);
    expect(s).toMatchObject({ purity: 1, completeness: 1, pairPrecision: 1, pairRecall: 1, clusters: 3, mixedClusters: 0, singletons: 2, singletonsMerged: 0, recurringIdentities: 1 });
  });

  it('a_mixed_cluster_lowers_purity_and_precision_and_counts_the_merged_singleton', () => {
    // a, a, c in one cluster; b alone
    const s = scoreClusters(['a', 'a', 'b', 'c'], ['1', '1', '2', '1']);
    expect(s.purity).toBeCloseTo(3 / 4);
    expect(s.pairPrecision).toBeCloseTo(1 / 3);
    expect(s.pairRecall).toBe(1);
    expect(s.mixedClusters).toBe(1);
    expect(s.singletonsMerged).toBe(1);
  });

  it('a_split_identity_lowers_completeness_and_recall_not_purity', () => {
    const s = scoreClusters(['a', 'a', 'a', 'b'], ['1', '1', '2', '3']);
    expect(s.purity).toBe(1);
    expect(s.completeness).toBeCloseTo(2 / 3);
    expect(s.pairRecall).toBeCloseTo(1 / 3);
  });

  it('evaluation_feeds_every_item_in_a_seeded_order_and_is_repeatable', () => {
    const items = [
      { label: 'a', embedding: unit([1, 0.05, 0]) },
      { label: 'a', embedding: unit([1, -0.05, 0]) },
      { label: 'b', embedding: unit([0, 1, 0.05]) },
      { label: 'b', embedding: unit([0, 1, -0.05]) },
      { label: 'c', embedding: unit([0, 0, 1]) },
    ];
    const s = evaluateClustering(items, { threshold: 0.3 }, 7);
    expect(s).toMatchObject({ items: 5, clusters: 3, purity: 1, completeness: 1 });
    expect(evaluateClustering(items, { threshold: 0.3 }, 7)).toEqual(s);
    // a threshold wider than the people's distance puts everyone together
    expect(evaluateClustering(items, { threshold: 1.9 }, 7).clusters).toBe(1);
  });
});
