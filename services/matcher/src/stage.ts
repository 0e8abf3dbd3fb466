/**
 * The matcher stage: Face messages in, Match messages out (keyed by camera id). Per camera, faces are
 * tracked across frames (tracker.ts) and each track is named from its best faces against the gallery held
 * in memory (gallery-cache.ts, refreshed on change notifications). Every Match carries this face's own best
 * candidates and the track's running decision (`track`), which the alerts stage turns into identity events.
 *
 * A face under the quality floor (`qualityFloor`) is tracked but never named: its own Match has identity null
 * (its candidates are still listed, for diagnosis), and it does not count towards its track's identity.
 *
 * Upstream is at-least-once (an embedder that dies re-embeds frames whose faces were already published), so
 * faces are deduplicated by (frameId, faceIndex) before they touch a track.
 *
 * Recurring strangers (issue 14, `unknownClusters`): an unknown track that ends (its camera's next frame
 * finds it timed out) gives the mean of its faces at or above the quality floor to the stage's
 * UnknownClusterer (engine match/cluster.ts), kept for `retentionMs` of capture time; every Match of a live
 * unknown track that resembles a cluster carries it (`track.unknownCluster`: id, members, first and last
 * seen). One clusterer per matcher instance: instances on other camera partitions have their own clusters.
 */
import { DEFAULT_QUALITY_FLOOR, embeddingSum, identify, trackMean, UnknownClusterer, type Gallery, type IdentifyResult } from '@faceflow/engine/match';
import {
  FirstFailures,
  FaceflowError,
  FaceSchema,
  MatchSchema,
  toFaceflowError,
  type ConsumedMessage,
  type Counter,
  type Face,
  type HandlerContext,
  type Histogram,
  type Match,
  type Metrics,
  type Stage,
  type StageFailure,
  type StageResult,
  type UnknownClusterRef,
} from '@faceflow/shared';
import { CameraTracker, trackerOptionsFor, type DecideOptions, type Track, type TrackerOptions } from './tracker.js';

/** The L2 distance threshold when neither the configuration nor a calibration gives one: the decision policy's. */
export { FALLBACK_THRESHOLD } from '@faceflow/engine/match';
export const DEFAULT_MARGIN = 0.03;
/**
 * Faces under this quality are never named (FACEFLOW_MATCH_QUALITY_FLOOR). It is the engine's floor for
 * enrolment, on the same score (packages/engine/src/quality.ts), chosen on the 300 LFW Part Labels images: it
 * refuses the 8 faces the detector missed and only 2 more (clean LFW faces: median 0.48, 5th percentile 0.21),
 * and 280 of the same images blurred by a 2.5 px Gaussian (median 0.10). Since the score is a product, any
 * one bad component sinks it: eyes under ~11 px apart, heavy blur, or a head turned past ~55 degrees,
 * which are the faces strangers get named from. One floor for enrolling and for naming: a face not good
 * enough to enroll is not good enough to name someone from.
 */
export const DEFAULT_MATCH_QUALITY_FLOOR = DEFAULT_QUALITY_FLOOR;

export interface GalleryView {
  readonly current: Gallery | undefined;
  readonly version: number;
}

export interface MatcherStageOptions {
  gallery: GalleryView;
  matchesTopic: string;
  threshold: number;
  margin?: number;
  /**
   * The embedding model the gallery holds (with a projection head: its embedder name, base+head:...). When
   * set, a face embedded by another model or head is not compared (its distances would mean nothing): it is
   * reported as a failure (dead-lettered, counted with reason "model_mismatch").
   */
  model?: string;
  /** Faces under this quality (0..1) are tracked but never named (default DEFAULT_MATCH_QUALITY_FLOOR). */
  qualityFloor?: number;
  tracker?: Partial<TrackerOptions>;
  /** Candidates listed per Match (default 3). */
  topK?: number;
  /** (frameId, faceIndex) pairs remembered for deduplication (default 100 000). */
  dedupSize?: number;
  metrics?: Metrics;
  /** cluster ended unknown tracks (issue 14): the join distance and how long (capture time) a member is kept */
  unknownClusters?: { threshold: number; retentionMs: number; idPrefix?: string };
}

export class LruSet {
  private readonly items = new Map<string, true>();
  constructor(private readonly max: number) {}
  has(k: string): boolean {
    return this.items.has(k);
  }
  add(k: string): void {
    this.items.delete(k);
    this.items.set(k, true);
    if (this.items.size > this.max) this.items.delete(this.items.keys().next().value!);
  }
  get size(): number {
    return this.items.size;
  }
}

export class MatcherStage implements Stage {
  readonly name = 'matcher';
  private readonly trackers = new Map<string, CameraTracker>();
  private readonly seen: LruSet;
  private readonly decideOptions: DecideOptions;
  private readonly qualityFloor: number;
  /** Failed messages counted once (the dead-letter policy runs them through process() again). */
  private readonly failedOnce = new FirstFailures();
  private readonly clusters: UnknownClusterer | undefined;
  private readonly m: {
    faces?: Counter<'stage'>;
    lowQuality?: Counter<never>;
    duplicates?: Counter<'stage'>;
    matches?: Counter<'result'>;
    search?: Histogram;
    dropped?: Counter<'stage' | 'reason'>;
  };

  constructor(private readonly o: MatcherStageOptions) {
    this.seen = new LruSet(o.dedupSize ?? 100_000);
    this.decideOptions = { threshold: o.threshold, margin: o.margin ?? DEFAULT_MARGIN };
    this.qualityFloor = o.qualityFloor ?? o.tracker?.qualityFloor ?? DEFAULT_MATCH_QUALITY_FLOOR;
    this.clusters = o.unknownClusters ? new UnknownClusterer({ threshold: o.unknownClusters.threshold, retentionMs: o.unknownClusters.retentionMs, ...(o.unknownClusters.idPrefix !== undefined ? { idPrefix: o.unknownClusters.idPrefix } : {}) }) : undefined;
    const mt = o.metrics;
    this.m = mt
      ? {
          faces: mt.counter({ name: 'faces_in_total', help: 'Faces that entered a stage', labelNames: ['stage'] as const }),
          lowQuality: mt.counter({ name: 'matcher_low_quality_faces_total', help: 'Faces under the quality floor: tracked, never named' }),
          duplicates: mt.counter({ name: 'duplicates_total', help: 'Redelivered messages skipped by deduplication', labelNames: ['stage'] as const }),
          matches: mt.counter({ name: 'matches_total', help: 'Faces matched against the gallery, by per-track result', labelNames: ['result'] as const }),
          search: mt.histogram({ name: 'matcher_search_seconds', help: 'Tracking and gallery search time of one frame' }),
          dropped: mt.counter({ name: 'messages_dropped_total', help: 'Messages a stage could not process (dead-lettered), by reason', labelNames: ['stage', 'reason'] as const }),
        }
      : {};
  }

  private tracker(cameraId: string): CameraTracker {
    let t = this.trackers.get(cameraId);
    if (!t) {
      t = new CameraTracker(cameraId, trackerOptionsFor(this.o.threshold, { ...this.o.tracker, qualityFloor: this.qualityFloor }));
      this.trackers.set(cameraId, t);
    }
    return t;
  }

  /** Tracks of every camera, for tests and debugging. */
  liveTracks(): { cameraId: string; id: string; identity: string | null; faces: number }[] {
    return [...this.trackers.values()].flatMap((c) => c.live.map((t) => ({ cameraId: c.cameraId, id: t.id, identity: t.decision.identity, faces: t.faces })));
  }

  /** The recurring-stranger clusters, oldest first (for tests and debugging); [] when clustering is off. */
  unknownClusters(): ReturnType<UnknownClusterer['list']> {
    return this.clusters?.list() ?? [];
  }

  /** The recurring-stranger clusterer itself (the clusters API reads and names clusters); undefined when clustering is off. */
  get unknownClusterer(): UnknownClusterer | undefined {
    return this.clusters;
  }

  /** The mean of a track's faces at or above the quality floor, or null (none, or they cancel out). */
  private qualityMean(t: Track): Float32Array | null {
    const named = t.best.filter((b) => b.quality >= this.qualityFloor);
    return named.length === 0 ? null : trackMean(embeddingSum(named.map((b) => b.embedding)));
  }

  /** An ended unknown track joins the clusters (a named one, or one with no face above the floor, does not). */
  private clusterEnded(t: Track): void {
    if (!this.clusters || t.decision.identity !== null) return;
    const mean = this.qualityMean(t);
    if (!mean) return;
    try {
      this.clusters.add({ id: t.id, embedding: mean, at: t.lastTs, camera: t.cameraId });
    } catch (e) {
      // a track id seen again (a replayed stream) or another model's dimension: that track is not clustered
      this.m.dropped?.inc({ stage: this.name, reason: `cluster_${toFaceflowError(e).code.toLowerCase()}` });
    }
  }

  /** Faces of one frame -> their Matches (updates the camera's tracks). */
  matchFrame(faces: Face[]): Match[] {
    const end = this.m.search?.startTimer();
    const gallery = this.o.gallery.current;
    const galleryVersion = this.o.gallery.version;
    const tracker = this.tracker(faces[0]!.cameraId);
    if (this.clusters) {
      // the tracks this frame ends, before update() ends them unseen
      for (const t of tracker.expire(faces[0]!.captureTs)) this.clusterEnded(t);
      this.clusters.expire(faces[0]!.captureTs);
    }
    const clusterOf = new Map<string, UnknownClusterRef | null>();
    const inputs = faces.map((f) => ({
      frameId: f.frameId,
      faceIndex: f.faceIndex,
      captureTs: f.captureTs,
      box: f.box,
      embedding: Float32Array.from(f.embedding),
      quality: f.quality,
      ...(f.cropRef ? { cropRef: f.cropRef } : {}),
    }));
    const topK = this.o.topK ?? 3;
    // each face's own decision and its candidates from one search, which the tracker's split rule reuses
    // (issue 14: at 1M identities a search is ~10 ms; it was searched three times per face)
    const searched: Array<IdentifyResult | undefined> = inputs.map((f) => (gallery ? identify(f.embedding, gallery, { threshold: this.decideOptions.threshold, margin: this.decideOptions.margin, k: topK }) : undefined));
    const ownIdentity = searched.map((r, i) => (faces[i]!.quality < this.qualityFloor ? null : r?.identity ?? null));
    const tracks = tracker.update(inputs, gallery, this.decideOptions, ownIdentity);
    const out = faces.map((f, i): Match => {
      const t = tracks[i]!;
      const lowQuality = f.quality < this.qualityFloor;
      if (lowQuality) this.m.lowQuality?.inc();
      const candidates = (searched[i]?.neighbours ?? []).map((c) => ({ identity: c.name, score: Math.round((1 - (c.distance * c.distance) / 2) * 1e4) / 1e4 }));
      const best = t.best[0];
      let cluster: UnknownClusterRef | null = null;
      if (this.clusters && t.decision.identity === null) {
        if (!clusterOf.has(t.id)) {
          const mean = this.qualityMean(t);
          let near: ReturnType<UnknownClusterer['match']> = null;
          try {
            near = mean && this.clusters.size > 0 ? this.clusters.match(mean) : null;
          } catch {
            near = null; // an embedding the clusters cannot compare (another dimension) resembles none of them
          }
          clusterOf.set(t.id, near ? { id: near.clusterId, members: near.members, firstSeen: near.firstSeen, lastSeen: near.lastSeen } : null);
        }
        cluster = clusterOf.get(t.id)!;
      }
      const m: Match = {
        frameId: f.frameId,
        cameraId: f.cameraId,
        captureTs: f.captureTs,
        faceIndex: f.faceIndex,
        trackId: t.id,
        box: f.box,
        identity: ownIdentity[i]!, // a face under the floor names no one
        score: candidates[0]?.score ?? null,
        candidates,
        quality: f.quality,
        galleryVersion,
        track: {
          identity: t.decision.identity,
          confidence: Math.round(t.decision.confidence * 1e4) / 1e4,
          startTs: t.startTs,
          faces: t.faces,
          reason: t.decision.reason,
          ...(best?.cropRef ? { bestCropRef: best.cropRef } : {}),
          ...(cluster ? { unknownCluster: cluster } : {}),
        },
      };
      if (f.cropRef) m.cropRef = f.cropRef;
      this.m.matches?.inc({ result: t.decision.identity === null ? 'unknown' : 'identified' });
      return m;
    });
    end?.();
    return out;
  }

  async process(messages: ConsumedMessage[], _ctx: HandlerContext): Promise<StageResult> {
    const failures: StageFailure[] = [];
    const fresh: Face[] = [];
    const keys: string[] = [];
    const inBatch = new Set<string>();
    for (const msg of messages) {
      let face: Face;
      try {
        face = FaceSchema.decode(msg.value);
      } catch (e) {
        const err = toFaceflowError(e);
        failures.push({ message: msg, error: err });
        if (this.failedOnce.first(msg)) this.m.dropped?.inc({ stage: this.name, reason: err.code.toLowerCase() });
        continue;
      }
      if (this.o.model !== undefined && face.model !== this.o.model) {
        const error = new FaceflowError(
          'INVALID_MESSAGE',
          `face ${face.faceIndex} of frame ${face.frameId} was embedded by "${face.model}"; this matcher compares "${this.o.model}" embeddings: the embedder and the matcher must run the same model and projection head (FACEFLOW_HEAD on both or on neither)`,
          { details: { faceModel: face.model, matcherModel: this.o.model } },
        );
        failures.push({ message: msg, error });
        if (this.failedOnce.first(msg)) this.m.dropped?.inc({ stage: this.name, reason: 'model_mismatch' });
        continue;
      }
      // issue 14: a face the gallery cannot be searched with fails alone, before it touches a track (thrown
      // from the search it failed the whole batch, after the tracker had taken the faces before it)
      const dim = this.o.gallery.current?.dim;
      if (dim !== undefined && face.embedding.length !== dim) {
        const error = new FaceflowError(
          'INVALID_MESSAGE',
          `face ${face.faceIndex} of frame ${face.frameId} has an embedding of ${face.embedding.length} values; the gallery holds ${dim}-value embeddings: the embedder and the matcher must run the same model (FACEFLOW_MODEL, FACEFLOW_HEAD)`,
          { details: { faceDim: face.embedding.length, galleryDim: dim } },
        );
        failures.push({ message: msg, error });
        if (this.failedOnce.first(msg)) this.m.dropped?.inc({ stage: this.name, reason: 'dimension_mismatch' });
        continue;
      }
      const key = `${face.cameraId}\u0000${face.frameId}\u0000${face.faceIndex}`;
      if (this.seen.has(key) || inBatch.has(key)) {
        this.m.duplicates?.inc({ stage: this.name });
        continue;
      }
      inBatch.add(key);
      keys.push(key);
      fresh.push(face);
    }
    this.m.faces?.inc({ stage: this.name }, fresh.length);
    // consecutive faces of one frame are tracked together
    const matches: Match[] = [];
    for (let i = 0; i < fresh.length; ) {
      let j = i + 1;
      while (j < fresh.length && fresh[j]!.frameId === fresh[i]!.frameId && fresh[j]!.cameraId === fresh[i]!.cameraId) j++;
      matches.push(...this.matchFrame(fresh.slice(i, j)));
      i = j;
    }
    return {
      outputs: [{ topic: this.o.matchesTopic, messages: matches.map((m) => ({ key: m.cameraId, value: MatchSchema.encode(m) })) }],
      failures,
      commit: () => keys.forEach((k) => this.seen.add(k)),
    };
  }
}
