/**
 * Scoring the unknown-face clusterer (issue 14, item 3) on labelled embeddings (LFW identities): each
 * embedding is fed as one unknown track, in a seeded shuffled order, and the clusters are compared with the
 * identities.
 *
 * - purity: the share of members that belong to their cluster's most common identity (1 = no cluster mixes
 *   people);
 * - completeness (inverse purity): the share of members that sit in their identity's largest cluster
 *   (1 = nobody is split), over identities with two or more images (a single image cannot be split);
 * - pairwise precision / recall: of the pairs put in one cluster, the share that are one person; of the
 *   pairs of one person, the share put in one cluster;
 * - singletonsMerged: identities with one image whose cluster holds someone else (a stranger seen once
 *   wrongly taken for a recurring one).
 */
import { UnknownClusterer, type ClustererOptions } from '../match/cluster.js';
import { Rng } from './rng.js';

export interface LabelledEmbedding {
  label: string;
  embedding: Float32Array;
}

export interface ClusterScores {
  items: number;
  identities: number;
  /** identities with two or more items */
  recurringIdentities: number;
  clusters: number;
  /** clusters with members of more than one identity */
  mixedClusters: number;
  merges: number;
  purity: number;
  completeness: number;
  pairPrecision: number;
  pairRecall: number;
  pairF1: number;
  singletons: number;
  singletonsMerged: number;
}

const pairs = (n: number): number => (n * (n - 1)) / 2;

/** The scores of a clustering: `clusterOf[i]` is item i's cluster, `labels[i]` its identity. */
export function scoreClusters(labels: readonly string[], clusterOf: readonly string[]): ClusterScores {
  if (labels.length !== clusterOf.length) throw new RangeError(`scoreClusters: ${labels.length} labels but ${clusterOf.length} cluster ids`);
  const byCluster = new Map<string, Map<string, number>>();
  const byLabel = new Map<string, Map<string, number>>();
  for (let i = 0; i < labels.length; i++) {
    const l = labels[i]!;
    const c = clusterOf[i]!;
    const cm = byCluster.get(c) ?? new Map<string, number>();
    cm.set(l, (cm.get(l) ?? 0) + 1);
    byCluster.set(c, cm);
    const lm = byLabel.get(l) ?? new Map<string, number>();
    lm.set(c, (lm.get(c) ?? 0) + 1);
    byLabel.set(l, lm);
  }
  let pure = 0;
  let mixed = 0;
  let clusterPairs = 0;
  let samePairs = 0;
  for (const cm of byCluster.values()) {
    let size = 0;
    let max = 0;
    for (const n of cm.values()) {
      size += n;
      max = Math.max(max, n);
      samePairs += pairs(n);
    }
    pure += max;
    clusterPairs += pairs(size);
    if (cm.size > 1) mixed++;
  }
  let complete = 0;
  let recurringItems = 0;
  let recurring = 0;
  let labelPairs = 0;
  let singletons = 0;
  let singletonsMerged = 0;
  for (const [label, lm] of byLabel) {
    let size = 0;
    let max = 0;
    for (const n of lm.values()) {
      size += n;
      max = Math.max(max, n);
    }
    labelPairs += pairs(size);
    if (size >= 2) {
      recurring++;
      recurringItems += size;
      complete += max;
    } else {
      singletons++;
      const c = [...lm.keys()][0]!;
      const cm = byCluster.get(c)!;
      if (cm.size > 1 || (cm.get(label) ?? 0) > 1) singletonsMerged++;
    }
  }
  const precision = clusterPairs === 0 ? 1 : samePairs / clusterPairs;
  const recall = labelPairs === 0 ? 1 : samePairs / labelPairs;
  return {
    items: labels.length,
    identities: byLabel.size,
    recurringIdentities: recurring,
    clusters: byCluster.size,
    mixedClusters: mixed,
    merges: 0,
    purity: labels.length === 0 ? 1 : pure / labels.length,
    completeness: recurringItems === 0 ? 1 : complete / recurringItems,
    pairPrecision: precision,
    pairRecall: recall,
    pairF1: precision + recall === 0 ? 0 : (2 * precision * recall) / (precision + recall),
    singletons,
    singletonsMerged,
  };
}

/**
 * Feeds `items` to a fresh clusterer in an order shuffled by `seed` (one item per unknown track, one second
 * apart, no retention) and scores the final clusters.
 */
export function evaluateClustering(items: readonly LabelledEmbedding[], options: ClustererOptions, seed: number): ClusterScores {
  const order = new Rng(seed).shuffle(items.map((_, i) => i));
  const clusterer = new UnknownClusterer(options);
  for (const [k, i] of order.entries()) clusterer.add({ id: `item-${i}`, embedding: items[i]!.embedding, at: k * 1000 });
  const clusterOf = items.map((_, i) => clusterer.clusterOf(`item-${i}`)!);
  return { ...scoreClusters(items.map((x) => x.label), clusterOf), merges: clusterer.merges.length };
}
