/**
 * Recurring strangers (issue 14, item 3): an online clusterer of unknown tracks' mean embeddings, so that
 * "the same unknown person again" has a name (a cluster id) before anyone enrols them.
 *
 * The algorithm is leader/threshold, then merge: a new member joins the cluster whose centroid is nearest,
 * if that distance is under `threshold` and so is its distance to every kept member embedding of that
 * cluster (else the next nearest such cluster), else it starts a cluster of its own; after each join,
 * clusters whose centroids have come within `mergeThreshold` of the grown one, their kept members all
 * within it of each other, are merged into it. The member gate is what keeps a cluster to one person: on
 * LFW, joining on the centroid alone let clusters snowball (BENCHMARKS.md, "Unknown-face clustering"). The default
 * threshold is the model's distance at FAR 1e-4 (`clusterThreshold`): stricter than identify's FAR 1e-3,
 * because every cluster is compared with every new stranger, and a merge of two people is not undone.
 *
 * A centroid is the L2-normalised mean of its members' embeddings (the track-identity rule's `trackMean`:
 * the engine's embeddings are unit vectors and their direction is what compares). Memory per cluster is
 * bounded: the running sum, the last `keepEmbeddings` members' embeddings, and one small record (id, time,
 * camera) per member; older members' embeddings live on only inside the sum ("folded").
 *
 * Retention: `forget(memberId)` and `expire(now)` drop members; a dropped member's embedding leaves the
 * centroid (subtracted if it was kept; if it was folded, the whole folded part of the sum is dropped, since
 * it cannot be separated), and a cluster left empty is removed. Times are the caller's (`at`, ms), so the
 * clusterer is deterministic: the same members in the same order give the same clusters and ids.
 *
 * Stable ids: a cluster's id is given when it is created (`idPrefix` + a per-instance sequence number); in a
 * merge the cluster with the oldest member (then the older id) keeps its id, and the merge is recorded
 * (`merges`, and `mergedFrom` on the cluster) so that a consumer holding the other id can follow it.
 */
import { FaceflowError } from '@faceflow/shared';
import { decisionThreshold, type DecisionThreshold, type DecisionThresholdOptions, type ThresholdInfo } from './decision.js';
import { trackMean } from './track-identity.js';

export interface ClustererOptions {
  /** L2 distance under which a member joins a cluster (see clusterThreshold) */
  threshold: number;
  /** L2 distance between centroids under which two clusters merge (default: threshold) */
  mergeThreshold?: number;
  /** the embeddings' dimension (default: the first member's) */
  dimension?: number;
  /** member embeddings kept per cluster besides the running sum (default 8) */
  keepEmbeddings?: number;
  /** members older than this (ms) are dropped by expire(now); default: kept until forgotten */
  retentionMs?: number;
  /** prefix of the cluster ids (default "u"); give each clusterer of one deployment its own */
  idPrefix?: string;
}

export interface ClusterInput {
  /** the member's id (a track id): unique among the current members */
  id: string;
  /** an L2-normalised embedding (a track's mean) */
  embedding: Float32Array;
  /** when it was seen, ms since the epoch */
  at: number;
  camera?: string;
}

/** One cluster as callers see it (a copy: changing it changes nothing). */
export interface UnknownCluster {
  id: string;
  /** the oldest and newest current member's time (ms) */
  firstSeen: number;
  lastSeen: number;
  members: number;
  /** current members per camera ("" for members without one) */
  cameras: Record<string, number>;
  /** the L2-normalised centroid */
  centroid: Float32Array;
  /** the kept member embeddings, oldest first */
  embeddings: Float32Array[];
  /** ids of the clusters merged into this one, in merge order */
  mergedFrom: string[];
}

export interface ClusterAssignment {
  /** the member's cluster after the add (and after any merge) */
  clusterId: string;
  /** true when the member started a new cluster */
  created: boolean;
  /** the member's distance to the centroid it joined (null when it started a cluster) */
  distance: number | null;
  members: number;
  firstSeen: number;
  lastSeen: number;
  /** ids of the clusters that this add merged away into clusterId */
  merged: string[];
}

export interface ClusterMatch {
  clusterId: string;
  distance: number;
  members: number;
  firstSeen: number;
  lastSeen: number;
}

export interface ClusterMerge {
  /** the surviving id */
  into: string;
  from: string;
  at: number;
}

interface Member {
  id: string;
  at: number;
  camera: string;
}

interface ClusterState {
  id: string;
  /** creation order: the tie-break of "older" */
  seq: number;
  members: Member[]; // in order of addition (merges sort by time)
  sum: Float64Array;
  /** the newest members' embeddings, by member id (Map keeps insertion order: oldest first) */
  kept: Map<string, Float32Array>;
  /** members whose embedding is only inside `sum` */
  folded: Set<string>;
  /** the folded embeddings' part of `sum` */
  foldedSum: Float64Array;
  centroid: Float32Array;
  mergedFrom: string[];
}

const DEFAULT_KEEP = 8;

/**
 * The clustering threshold of a model: its distance at FAR 1e-4 (the decision policy's 'redact' purpose
 * measures the same operating point), else its FAR-1e-3 distance with a warning; `override` wins.
 */
export function clusterThreshold(info: ThresholdInfo, override?: number, options: DecisionThresholdOptions = {}): DecisionThreshold {
  const d = decisionThreshold(info, 'redact', override, options);
  if (d.warning === undefined) return d;
  return { ...d, warning: d.warning.replace('redaction keeps faces visible at', 'clustering groups strangers at').replace('(more strangers may be left visible)', '(more people may share a cluster)') };
}

function badInput(msg: string): FaceflowError {
  return new FaceflowError('INVALID_ARGUMENT', msg);
}

function checkDistance(name: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0 || v > 2) throw new FaceflowError('INVALID_CONFIG', `cluster ${name} must be an L2 distance in (0, 2]; got ${String(v)}`);
  return v;
}

export class UnknownClusterer {
  readonly threshold: number;
  readonly mergeThreshold: number;
  readonly keepEmbeddings: number;
  readonly retentionMs: number | undefined;
  private readonly idPrefix: string;
  private dim: number | undefined;
  private nextSeq = 1;
  private readonly clusters = new Map<string, ClusterState>();
  /** member id -> its cluster id */
  private readonly memberOf = new Map<string, string>();
  /** merged-away id -> the id it went into (followed by resolve) */
  private readonly mergedInto = new Map<string, string>();
  private readonly mergeLog: ClusterMerge[] = [];

  constructor(options: ClustererOptions) {
    this.threshold = checkDistance('threshold', options.threshold);
    this.mergeThreshold = options.mergeThreshold === undefined ? this.threshold : checkDistance('mergeThreshold', options.mergeThreshold);
    const keep = options.keepEmbeddings ?? DEFAULT_KEEP;
    if (!Number.isInteger(keep) || keep < 1 || keep > 1000) throw new FaceflowError('INVALID_CONFIG', `cluster keepEmbeddings must be an integer in 1-1000; got ${String(keep)}`);
    this.keepEmbeddings = keep;
    if (options.retentionMs !== undefined && !(Number.isFinite(options.retentionMs) && options.retentionMs > 0)) {
      throw new FaceflowError('INVALID_CONFIG', `cluster retentionMs must be a positive number of milliseconds; got ${String(options.retentionMs)}`);
    }
    this.retentionMs = options.retentionMs;
    if (options.dimension !== undefined && !(Number.isInteger(options.dimension) && options.dimension > 0)) {
      throw new FaceflowError('INVALID_CONFIG', `cluster dimension must be a positive integer; got ${String(options.dimension)}`);
    }
    this.dim = options.dimension;
    this.idPrefix = options.idPrefix ?? 'u';
  }

  /** the number of clusters */
  get size(): number {
    return this.clusters.size;
  }

  /** the number of current members over all clusters */
  get memberCount(): number {
    return this.memberOf.size;
  }

  get dimension(): number | undefined {
    return this.dim;
  }

  /** every merge so far, oldest first (a copy) */
  get merges(): ClusterMerge[] {
    return this.mergeLog.map((m) => ({ ...m }));
  }

  /**
   * Adds one member (an unknown track's mean embedding) and returns its cluster. Bad input (a wrong
   * dimension, a non-finite value, a zero vector, a reused member id, a bad time) is an INVALID_ARGUMENT
   * error and changes nothing.
   */
  add(input: ClusterInput): ClusterAssignment {
    const { id, embedding, at } = input;
    if (typeof id !== 'string' || id.length === 0) throw badInput('cluster member id must be a non-empty string');
    if (this.memberOf.has(id)) throw badInput(`cluster member "${id}" is already a member (of ${this.memberOf.get(id)}); forget it first or give each track its own id`);
    this.checkEmbedding(`cluster member "${id}"`, embedding);
    if (typeof at !== 'number' || !Number.isFinite(at)) throw badInput(`cluster member "${id}": at must be a finite time in ms; got ${String(at)}`);
    const camera = input.camera ?? '';
    if (typeof camera !== 'string') throw badInput(`cluster member "${id}": camera must be a string`);

    // validated: from here on nothing throws
    this.dim = embedding.length;
    const emb = Float32Array.from(embedding);
    const found = this.nearest(emb);
    const best = found?.cluster;
    const bestD = found?.distance ?? Infinity;
    const member: Member = { id, at, camera };
    let target: ClusterState;
    let created = false;
    if (best && bestD < this.threshold) {
      target = best;
    } else {
      target = this.newCluster();
      created = true;
    }
    this.join(target, member, emb);
    const merged = created ? [] : this.mergeAround(target, at);
    const survivor = this.clusters.get(this.resolve(target.id)!)!;
    return {
      clusterId: survivor.id,
      created,
      distance: created ? null : bestD,
      members: survivor.members.length,
      firstSeen: firstSeen(survivor),
      lastSeen: lastSeen(survivor),
      merged,
    };
  }

  /**
   * The cluster an embedding would join (its nearest centroid under `threshold`), without adding it: what a
   * live unknown track resembles. null when none is near; a bad embedding is an INVALID_ARGUMENT error.
   */
  match(embedding: Float32Array): ClusterMatch | null {
    this.checkEmbedding('match', embedding);
    const found = this.nearest(embedding);
    if (!found) return null;
    const c = found.cluster;
    return { clusterId: c.id, distance: found.distance, members: c.members.length, firstSeen: firstSeen(c), lastSeen: lastSeen(c) };
  }

  /**
   * The cluster an embedding joins: the nearest centroid under the threshold whose kept member embeddings
   * are all under it too (complete linkage over the kept ones). The centroid alone let a cluster snowball: the
   * normalised mean of several people drifts towards the average face, which is near everyone.
   */
  private nearest(e: Float32Array): { cluster: ClusterState; distance: number } | undefined {
    const near: { cluster: ClusterState; distance: number }[] = [];
    for (const c of this.clusters.values()) {
      const d = distance(e, c.centroid);
      if (d < this.threshold) near.push({ cluster: c, distance: d });
    }
    near.sort((a, b) => a.distance - b.distance || a.cluster.seq - b.cluster.seq);
    return near.find((n) => allWithin(e, n.cluster.kept.values(), this.threshold));
  }

  private checkEmbedding(what: string, embedding: Float32Array): void {
    if (!(embedding instanceof Float32Array)) throw badInput(`${what}: embedding must be a Float32Array`);
    if (this.dim !== undefined && embedding.length !== this.dim) {
      throw badInput(`${what}: embedding has dimension ${embedding.length}, the clusterer's is ${this.dim} (embeddings of another model?)`);
    }
    if (embedding.length === 0) throw badInput(`${what}: embedding is empty`);
    let norm = 0;
    for (let i = 0; i < embedding.length; i++) {
      const x = embedding[i]!;
      if (!Number.isFinite(x)) throw badInput(`${what}: embedding value ${i} is ${x}; pass a finite embedding`);
      norm += x * x;
    }
    if (!(norm > 1e-12)) throw badInput(`${what}: embedding is a zero vector`);
  }

  /** the current id of a cluster id, following merges; undefined once the cluster is gone */
  resolve(clusterId: string): string | undefined {
    let id = clusterId;
    for (let hops = 0; hops <= this.mergeLog.length; hops++) {
      if (this.clusters.has(id)) return id;
      const next = this.mergedInto.get(id);
      if (next === undefined) return undefined;
      id = next;
    }
    return undefined;
  }

  /** a cluster by id (a merged-away id gives the cluster it went into), or undefined */
  get(clusterId: string): UnknownCluster | undefined {
    const id = this.resolve(clusterId);
    return id === undefined ? undefined : view(this.clusters.get(id)!);
  }

  /** the cluster of a current member, or undefined */
  clusterOf(memberId: string): string | undefined {
    return this.memberOf.get(memberId);
  }

  /** every cluster, oldest first */
  list(): UnknownCluster[] {
    return [...this.clusters.values()].sort((a, b) => a.seq - b.seq).map(view);
  }

  /**
   * Drops one member (its embedding leaves the centroid); removes its cluster if it was the last. Returns
   * false for an id that is not a member (nothing changes).
   */
  forget(memberId: string): boolean {
    const cid = this.memberOf.get(memberId);
    if (cid === undefined) return false;
    const c = this.clusters.get(cid)!;
    this.drop(c, new Set([memberId]));
    return true;
  }

  /**
   * Removes a whole cluster and its members (a merged-away id removes the cluster it went into): what naming
   * it does once its embeddings are enrolled (issue 14, `faceflow clusters name`). Returns the removed
   * cluster's id, or undefined for an unknown id (nothing changes).
   */
  remove(clusterId: string): string | undefined {
    const id = this.resolve(clusterId);
    if (id === undefined) return undefined;
    for (const m of this.clusters.get(id)!.members) this.memberOf.delete(m.id);
    this.clusters.delete(id);
    return id;
  }

  /**
   * Erasure (issue 15 item 3): removes every cluster that `embeddings` (an erased person's templates) would
   * join, i.e. the unknown clusters built from that person before they were enrolled. Returns their ids.
   */
  removeNear(embeddings: readonly Float32Array[]): string[] {
    for (const e of embeddings) this.checkEmbedding('removeNear', e);
    const removed: string[] = [];
    for (const e of embeddings) {
      for (let m = this.match(e); m; m = this.match(e)) removed.push(this.remove(m.clusterId)!);
    }
    return removed;
  }

  /**
   * Drops every member seen before `now - retentionMs` (the retention rule) and the clusters left empty;
   * returns how many members were dropped. Without retentionMs it drops nothing.
   */
  expire(now: number): number {
    if (!Number.isFinite(now)) throw badInput(`expire: now must be a finite time in ms; got ${String(now)}`);
    if (this.retentionMs === undefined) return 0;
    const cutoff = now - this.retentionMs;
    let dropped = 0;
    for (const c of [...this.clusters.values()]) {
      const old = new Set(c.members.filter((m) => m.at < cutoff).map((m) => m.id));
      if (old.size === 0) continue;
      dropped += old.size;
      this.drop(c, old);
    }
    return dropped;
  }

  private newCluster(): ClusterState {
    const seq = this.nextSeq++;
    const dim = this.dim!;
    const c: ClusterState = {
      id: `${this.idPrefix}${seq}`,
      seq,
      members: [],
      sum: new Float64Array(dim),
      kept: new Map(),
      folded: new Set(),
      foldedSum: new Float64Array(dim),
      centroid: new Float32Array(dim),
      mergedFrom: [],
    };
    this.clusters.set(c.id, c);
    return c;
  }

  private join(c: ClusterState, m: Member, emb: Float32Array): void {
    c.members.push(m);
    for (let i = 0; i < emb.length; i++) c.sum[i]! += emb[i]!;
    c.kept.set(m.id, emb);
    this.fold(c);
    this.memberOf.set(m.id, c.id);
    c.centroid = centroidOf(c.sum, c.centroid);
  }

  /** moves the oldest kept embeddings beyond keepEmbeddings into the folded part of the sum */
  private fold(c: ClusterState): void {
    while (c.kept.size > this.keepEmbeddings) {
      const [mid, e] = c.kept.entries().next().value as [string, Float32Array];
      c.kept.delete(mid);
      c.folded.add(mid);
      for (let i = 0; i < e.length; i++) c.foldedSum[i]! += e[i]!;
    }
  }

  private drop(c: ClusterState, ids: Set<string>): void {
    let dropFolded = false;
    for (const mid of ids) {
      this.memberOf.delete(mid);
      const e = c.kept.get(mid);
      if (e) {
        c.kept.delete(mid);
        for (let i = 0; i < e.length; i++) c.sum[i]! -= e[i]!;
      } else if (c.folded.has(mid)) {
        dropFolded = true;
      }
    }
    c.members = c.members.filter((m) => !ids.has(m.id));
    if (dropFolded) {
      // the folded embeddings cannot be told apart: drop all of them from the centroid, keep their members
      for (let i = 0; i < c.sum.length; i++) c.sum[i]! -= c.foldedSum[i]!;
      c.foldedSum.fill(0);
      c.folded.clear();
    } else {
      for (const mid of ids) c.folded.delete(mid);
    }
    if (c.members.length === 0) {
      this.clusters.delete(c.id);
      return;
    }
    if (c.kept.size === 0 && c.folded.size === 0) {
      // members remain but none has an embedding left in the sum: the cluster can no longer be compared
      for (const m of c.members) this.memberOf.delete(m.id);
      this.clusters.delete(c.id);
      return;
    }
    if (c.kept.size > 0 && c.folded.size === 0) recomputeSum(c); // exact again: no drift from subtraction
    c.centroid = centroidOf(c.sum, c.centroid);
  }

  /** merges into `grown`'s line every cluster whose centroid is within mergeThreshold; returns the merged-away ids */
  private mergeAround(grown: ClusterState, at: number): string[] {
    const merged: string[] = [];
    let cur = grown;
    for (;;) {
      let near: ClusterState | undefined;
      let nearD = Infinity;
      for (const c of this.clusters.values()) {
        if (c === cur) continue;
        const d = distance(cur.centroid, c.centroid);
        // merged clusters must also be within the distance member to member (kept ones), as a join is
        if (d < nearD && d < this.mergeThreshold && [...cur.kept.values()].every((e) => allWithin(e, c.kept.values(), this.mergeThreshold))) {
          nearD = d;
          near = c;
        }
      }
      if (!near || !(nearD < this.mergeThreshold)) return merged;
      const [keep, gone] = older(cur, near) ? [cur, near] : [near, cur];
      this.absorb(keep, gone, at);
      merged.push(gone.id);
      cur = keep;
    }
  }

  private absorb(keep: ClusterState, gone: ClusterState, at: number): void {
    keep.members = [...keep.members, ...gone.members].sort((a, b) => a.at - b.at);
    for (let i = 0; i < keep.sum.length; i++) {
      keep.sum[i]! += gone.sum[i]!;
      keep.foldedSum[i]! += gone.foldedSum[i]!;
    }
    for (const mid of gone.folded) keep.folded.add(mid);
    // kept embeddings: both sets, newest last by member time, then folded down to keepEmbeddings
    const byTime = new Map(keep.members.map((m, i) => [m.id, i]));
    const kept = [...keep.kept.entries(), ...gone.kept.entries()].sort((a, b) => byTime.get(a[0])! - byTime.get(b[0])!);
    keep.kept = new Map(kept);
    this.fold(keep);
    for (const m of gone.members) this.memberOf.set(m.id, keep.id);
    keep.mergedFrom.push(gone.id, ...gone.mergedFrom);
    this.clusters.delete(gone.id);
    this.mergedInto.set(gone.id, keep.id);
    this.mergeLog.push({ into: keep.id, from: gone.id, at });
    keep.centroid = centroidOf(keep.sum, keep.centroid);
  }
}

/** a is older than b: its oldest member is older, then it was created first */
function older(a: ClusterState, b: ClusterState): boolean {
  const fa = firstSeen(a);
  const fb = firstSeen(b);
  return fa !== fb ? fa < fb : a.seq < b.seq;
}

function allWithin(e: Float32Array, others: Iterable<Float32Array>, threshold: number): boolean {
  for (const o of others) if (!(distance(e, o) < threshold)) return false;
  return true;
}

function firstSeen(c: ClusterState): number {
  let t = Infinity;
  for (const m of c.members) if (m.at < t) t = m.at;
  return t;
}

function lastSeen(c: ClusterState): number {
  let t = -Infinity;
  for (const m of c.members) if (m.at > t) t = m.at;
  return t;
}

function recomputeSum(c: ClusterState): void {
  c.sum.fill(0);
  for (const e of c.kept.values()) for (let i = 0; i < e.length; i++) c.sum[i]! += e[i]!;
}

function centroidOf(sum: Float64Array, previous: Float32Array): Float32Array {
  return trackMean(Float32Array.from(sum)) ?? previous;
}

function distance(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) {
    const d = a[i]! - b[i]!;
    s += d * d;
  }
  return Math.sqrt(s);
}

function view(c: ClusterState): UnknownCluster {
  const cameras: Record<string, number> = {};
  for (const m of c.members) cameras[m.camera] = (cameras[m.camera] ?? 0) + 1;
  return {
    id: c.id,
    firstSeen: firstSeen(c),
    lastSeen: lastSeen(c),
    members: c.members.length,
    cameras,
    centroid: Float32Array.from(c.centroid),
    embeddings: [...c.kept.values()].map((e) => Float32Array.from(e)),
    mergedFrom: [...c.mergedFrom],
  };
}
