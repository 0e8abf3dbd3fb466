/**
 * Recurring strangers (issue 14, item 3): the online clusterer of unknown tracks' embeddings.
 */
import { describe, expect, it } from 'vitest';
import { FaceflowError } from '@faceflow/shared';
import { UnknownClusterer, clusterThreshold, type ClusterInput } from './cluster.js';
import { decisionThreshold } from './decision.js';

const unit = (v: number[]): Float32Array => {
  const n = Math.hypot(...v);
  return Float32Array.from(v.map((x) => x / n));
};

// two "people" far apart, with members scattered a little around each
const A = [1, 0, 0, 0];
const B = [0, 1, 0, 0];
const near = (base: number[], k: number): Float32Array => unit(base.map((x, i) => x + (i === 2 ? 0.05 * k : i === 3 ? -0.03 * k : 0)));

const member = (id: string, embedding: Float32Array, at: number, camera?: string): ClusterInput => ({ id, embedding, at, ...(camera ? { camera } : {}) });

function snapshot(c: UnknownClusterer): string {
  return JSON.stringify({ list: c.list().map((x) => ({ ...x, centroid: [...x.centroid], embeddings: x.embeddings.map((e) => [...e]) })), merges: c.merges, n: c.memberCount, dim: c.dimension });
}

describe('UnknownClusterer', () => {
  it('the_same_stranger_seen_again_joins_their_cluster_and_another_stranger_gets_a_new_one', () => {
    const c = new UnknownClusterer({ threshold: 0.3 });
    const a1 = c.add(member('t1', near(A, 0), 1000, 'door'));
    const b1 = c.add(member('t2', near(B, 0), 2000, 'door'));
    const a2 = c.add(member('t3', near(A, 1), 3000, 'yard'));
    expect(a1.created).toBe(true);
    expect(b1.created).toBe(true);
    expect(b1.clusterId).not.toBe(a1.clusterId);
    expect(a2).toMatchObject({ clusterId: a1.clusterId, created: false, members: 2, firstSeen: 1000, lastSeen: 3000, merged: [] });
    expect(a2.distance).toBeLessThan(0.3);
    const cl = c.get(a1.clusterId)!;
    expect(cl.cameras).toEqual({ door: 1, yard: 1 });
    expect(cl.embeddings).toHaveLength(2);
    expect(c.size).toBe(2);
  });

  it('clusters_whose_centroids_come_within_the_threshold_merge_and_the_oldest_keeps_its_id', () => {
    // one kept embedding per cluster: the older members' live on only in the centroid
    const c = new UnknownClusterer({ threshold: 0.5, keepEmbeddings: 1 });
    // two members 0.58 apart start two clusters; one between them pulls the centroids (and the kept
    // embeddings) within the threshold of each other
    const left = unit([1, 0.3, 0, 0]);
    const right = unit([1, -0.3, 0, 0]);
    const x = c.add(member('old', left, 100));
    const y = c.add(member('new', right, 200));
    expect(y.created).toBe(true);
    const z = c.add(member('mid', unit([1, 0.05, 0, 0]), 300));
    expect(z.clusterId).toBe(x.clusterId);
    expect(z.merged).toEqual([y.clusterId]);
    expect(c.size).toBe(1);
    expect(c.get(x.clusterId)).toMatchObject({ members: 3, firstSeen: 100, lastSeen: 300, mergedFrom: [y.clusterId] });
    expect(c.merges).toEqual([{ into: x.clusterId, from: y.clusterId, at: 300 }]);
    // the merged-away id still leads to the cluster
    expect(c.resolve(y.clusterId)).toBe(x.clusterId);
    expect(c.get(y.clusterId)!.id).toBe(x.clusterId);
    expect(c.clusterOf('new')).toBe(x.clusterId);
  });

  it('a_member_near_a_clusters_centroid_but_not_near_its_members_starts_its_own_cluster', () => {
    // the centroid of two people drifts between them (towards the average face, near everyone): joining on
    // the centroid alone let clusters snowball on LFW
    const c = new UnknownClusterer({ threshold: 0.5 });
    const p = c.add(member('p1', unit([1, 0.25, 0, 0]), 1)).clusterId;
    expect(c.add(member('p2', unit([1, -0.25, 0, 0]), 2)).clusterId).toBe(p);
    const q = c.add(member('q', unit([1, 0, 0.5, 0]), 3));
    expect(q.created).toBe(true);
    expect(c.get(p)!.members).toBe(2);
  });

  it('the_same_members_in_the_same_order_give_the_same_clusters_and_ids', () => {
    const run = (): string => {
      const c = new UnknownClusterer({ threshold: 0.3, keepEmbeddings: 2 });
      for (let k = 0; k < 6; k++) c.add(member(`a${k}`, near(A, k % 3), k * 10));
      for (let k = 0; k < 4; k++) c.add(member(`b${k}`, near(B, k % 2), 100 + k));
      return snapshot(c);
    };
    expect(run()).toBe(run());
  });

  it('a_cluster_keeps_only_a_bounded_number_of_member_embeddings', () => {
    const c = new UnknownClusterer({ threshold: 0.3, keepEmbeddings: 3 });
    let id = '';
    for (let k = 0; k < 10; k++) id = c.add(member(`a${k}`, near(A, k % 2), k)).clusterId;
    const cl = c.get(id)!;
    expect(cl.members).toBe(10);
    expect(cl.embeddings).toHaveLength(3);
    // the newest three are kept
    expect([...cl.embeddings[2]!]).toEqual([...near(A, 1)]);
  });

  it('a_forgotten_member_leaves_the_centroid_and_an_emptied_cluster_is_removed', () => {
    const c = new UnknownClusterer({ threshold: 0.5 });
    const a = c.add(member('a', unit([1, 0.2, 0, 0]), 1)).clusterId;
    c.add(member('b', unit([1, -0.2, 0, 0]), 2));
    expect(c.get(a)!.members).toBe(2);
    expect(c.forget('b')).toBe(true);
    const cl = c.get(a)!;
    expect(cl.members).toBe(1);
    for (const [i, v] of unit([1, 0.2, 0, 0]).entries()) expect(cl.centroid[i]).toBeCloseTo(v, 6);
    expect(c.forget('b')).toBe(false);
    expect(c.forget('a')).toBe(true);
    expect(c.size).toBe(0);
    expect(c.get(a)).toBeUndefined();
    expect(c.memberCount).toBe(0);
  });

  it('a_removed_cluster_takes_its_members_with_it_and_a_new_member_starts_afresh', () => {
    const c = new UnknownClusterer({ threshold: 0.5 });
    const a = c.add(member('a', near(A, 0), 1)).clusterId;
    c.add(member('b', near(A, 1), 2));
    const b = c.add(member('x', near(B, 0), 3)).clusterId;
    expect(c.remove('nope')).toBeUndefined();
    expect(c.remove(a)).toBe(a);
    expect([c.size, c.memberCount, c.get(a), c.clusterOf('a')]).toEqual([1, 1, undefined, undefined]);
    expect(c.remove(a)).toBeUndefined();
    // the member ids are free again, and the same face starts a new cluster (not the removed id)
    const again = c.add(member('a', near(A, 0), 4));
    expect(again.created).toBe(true);
    expect(again.clusterId).not.toBe(a);
    expect(c.get(b)!.members).toBe(1);
  });

  it('an_erased_persons_templates_take_the_unknown_clusters_built_from_them_and_no_other', () => {
    const c = new UnknownClusterer({ threshold: 0.5 });
    const a = c.add(member('a1', near(A, 0), 1)).clusterId;
    c.add(member('a2', near(A, 1), 2));
    const b = c.add(member('b1', near(B, 0), 3)).clusterId;
    expect(c.removeNear([near(A, 2)])).toEqual([a]);
    expect([c.get(a), c.get(b)?.members, c.clusterOf('a1')]).toEqual([undefined, 1, undefined]);
    expect(c.removeNear([near(A, 2)])).toEqual([]);
    expect(() => c.removeNear([new Float32Array([1, 0])])).toThrow(FaceflowError);
    expect(c.get(b)?.members).toBe(1);
  });

  it('forgetting_a_member_whose_embedding_was_folded_drops_the_folded_part_of_the_centroid', () => {
    const c = new UnknownClusterer({ threshold: 0.6, keepEmbeddings: 1 });
    const id = c.add(member('old', unit([1, 0.3, 0, 0]), 1)).clusterId;
    c.add(member('new', unit([1, -0.3, 0, 0]), 2)); // 'old' is now folded into the sum
    c.forget('old');
    const cl = c.get(id)!;
    expect(cl.members).toBe(1);
    for (const [i, v] of unit([1, -0.3, 0, 0]).entries()) expect(cl.centroid[i]).toBeCloseTo(v, 6);
  });

  it('members_older_than_the_retention_expire_and_first_seen_moves_with_them', () => {
    const c = new UnknownClusterer({ threshold: 0.3, retentionMs: 1000 });
    const a = c.add(member('a1', near(A, 0), 0, 'door')).clusterId;
    c.add(member('a2', near(A, 1), 900, 'yard'));
    const b = c.add(member('b1', near(B, 0), 100)).clusterId;
    expect(c.expire(500)).toBe(0);
    expect(c.expire(1500)).toBe(2); // a1 (0) and b1 (100) are older than 500
    expect(c.get(b)).toBeUndefined();
    expect(c.get(a)).toMatchObject({ members: 1, firstSeen: 900, lastSeen: 900, cameras: { yard: 1 } });
    expect(c.clusterOf('a1')).toBeUndefined();
    // without a retention nothing expires
    const keep = new UnknownClusterer({ threshold: 0.3 });
    keep.add(member('x', near(A, 0), 0));
    expect(keep.expire(1e15)).toBe(0);
    expect(keep.size).toBe(1);
  });

  it('bad_input_is_a_clear_error_and_changes_nothing', () => {
    const c = new UnknownClusterer({ threshold: 0.3 });
    c.add(member('a', near(A, 0), 1));
    const before = snapshot(c);
    const bad: Array<[ClusterInput, RegExp]> = [
      [member('x', unit([1, 0, 0]), 2), /dimension 3, the clusterer's is 4/],
      [member('x', Float32Array.from([1, Number.NaN, 0, 0]), 2), /value 1 is NaN/],
      [member('x', Float32Array.from([Infinity, 0, 0, 0]), 2), /value 0 is Infinity/],
      [member('x', new Float32Array(4), 2), /zero vector/],
      [member('a', near(A, 1), 2), /"a" is already a member/],
      [member('', near(A, 1), 2), /non-empty string/],
      [member('x', near(A, 1), Number.NaN), /finite time/],
      [{ id: 'x', embedding: [1, 0, 0, 0] as unknown as Float32Array, at: 2 }, /Float32Array/],
    ];
    for (const [input, msg] of bad) {
      let err: unknown;
      try {
        c.add(input);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(FaceflowError);
      expect((err as FaceflowError).code).toBe('INVALID_ARGUMENT');
      expect((err as Error).message).toMatch(msg);
      expect((err as Error).message).not.toContain('\n');
      expect(snapshot(c)).toBe(before);
    }
    expect(() => c.expire(Number.NaN)).toThrow(FaceflowError);
    expect(snapshot(c)).toBe(before);
    // a bad first member does not fix the dimension either
    const fresh = new UnknownClusterer({ threshold: 0.3 });
    expect(() => fresh.add(member('x', Float32Array.from([Number.NaN, 1, 0]), 0))).toThrow(/NaN/);
    expect(fresh.dimension).toBeUndefined();
    expect(fresh.add(member('x', near(A, 0), 0)).created).toBe(true);
  });

  it('a_bad_option_is_an_invalid_config_error', () => {
    for (const o of [{ threshold: 0 }, { threshold: Number.NaN }, { threshold: 3 }, { threshold: 0.3, mergeThreshold: -1 }, { threshold: 0.3, keepEmbeddings: 0 }, { threshold: 0.3, retentionMs: 0 }, { threshold: 0.3, dimension: 1.5 }]) {
      expect(() => new UnknownClusterer(o)).toThrow(expect.objectContaining({ code: 'INVALID_CONFIG' }));
    }
  });

  it('the_first_member_sets_the_dimension_unless_it_was_given', () => {
    const c = new UnknownClusterer({ threshold: 0.3, dimension: 4 });
    expect(() => c.add(member('x', unit([1, 0, 0]), 0))).toThrow(/dimension 3, the clusterer's is 4/);
    expect(c.size).toBe(0);
    const d = new UnknownClusterer({ threshold: 0.3 });
    d.add(member('x', unit([1, 0, 0]), 0));
    expect(d.dimension).toBe(3);
  });

  it('matching_a_live_track_finds_the_cluster_it_resembles_and_adds_nothing', () => {
    const c = new UnknownClusterer({ threshold: 0.3 });
    const a = c.add(member('a', near(A, 0), 5, 'door')).clusterId;
    const before = snapshot(c);
    expect(c.match(near(A, 1))).toMatchObject({ clusterId: a, members: 1, firstSeen: 5, lastSeen: 5 });
    expect(c.match(near(B, 0))).toBeNull();
    expect(() => c.match(unit([1, 0, 0]))).toThrow(/dimension 3/);
    expect(() => c.match(Float32Array.from([Number.NaN, 0, 0, 0]))).toThrow(/NaN/);
    expect(snapshot(c)).toBe(before);
    expect(new UnknownClusterer({ threshold: 0.3 }).match(near(A, 0))).toBeNull();
  });

  it('a_returned_cluster_is_a_copy', () => {
    const c = new UnknownClusterer({ threshold: 0.3 });
    const id = c.add(member('a', near(A, 0), 0)).clusterId;
    const cl = c.get(id)!;
    cl.centroid.fill(0);
    cl.embeddings[0]!.fill(0);
    cl.cameras['x'] = 9;
    expect(c.get(id)!.centroid[0]).toBeGreaterThan(0.9);
    expect(c.get(id)!.embeddings[0]![0]).toBeGreaterThan(0.9);
    expect(c.get(id)!.cameras).toEqual({ '': 1 });
  });
});

describe('clusterThreshold', () => {
  it('clustering_uses_the_models_distance_at_far_1e_4', () => {
    const t = clusterThreshold({ name: 'faceapi-recognition' });
    expect(t.source).toBe('calibration-far-1e-4');
    expect(t.value).toBe(decisionThreshold({ name: 'faceapi-recognition' }, 'redact').value);
    expect(t.value).toBeLessThan(decisionThreshold({ name: 'faceapi-recognition' }, 'identify').value);
  });

  it('a_model_without_a_far_1e_4_distance_clusters_at_its_far_1e_3_distance_with_a_warning', () => {
    const t = clusterThreshold({ name: 'sface-2021dec-int8bq' });
    expect(t.source).toBe('calibration-far-1e-3');
    expect(t.warning).toMatch(/clustering groups strangers at/);
    expect(clusterThreshold({ name: 'faceapi-recognition' }, 0.25)).toEqual({ value: 0.25, source: 'override' });
  });
});
