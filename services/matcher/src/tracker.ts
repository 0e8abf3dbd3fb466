/**
 * Per-camera face tracking: a person who walks through the scene is one track. Each frame's faces are
 * associated with the camera's live tracks greedily, cheapest first, by embedding distance (the same person
 * stays close in embedding space) gated by position (IoU with the track's last box, or a centre within a
 * few face sizes: at a capped frame rate a walking face moves), or by a very close embedding alone (the
 * person came back after an occlusion). A face that joins no track starts one. A track not seen for
 * `timeoutMs` of capture time is ended.
 *
 * Each track keeps its best `bestK` faces by quality; its identity is decided from the L2-normalised mean
 * of their embeddings (identify(): threshold and margin; unknown is an answer), and only when a majority of
 * those faces, each on its own, agree: it is named from its best faces, not from one blurry frame, and a
 * track that wrongly merged two people stays unknown rather than naming one of them.
 *
 * Quality floor (`qualityFloor`, default the engine's DEFAULT_QUALITY_FLOOR): a face under it still joins or
 * starts a track (it is still where the person is, and association needs it), but it never speaks for the
 * track's identity: only the best faces at or above the floor are averaged and vote. A tiny, blurred or
 * profile face is how a stranger gets named as someone; a track made only of such faces stays unknown with
 * the reason `low-quality` (not `above-threshold`: nobody compared it, so it says nothing about the person).
 *
 * A face that the gallery names, on its own, as someone other than a named track's person never continues
 * that track (a shot cut that puts a look-alike where someone was starts a new track).
 *
 * The distance gates scale with the decision threshold of the embedding model (`trackerOptionsFor`): the
 * same person in consecutive frames is much closer than the threshold, two people rarely are.
 */
import {
  decideTrackIdentity,
  DEFAULT_QUALITY_FLOOR,
  embeddingSum,
  identify,
  LOW_QUALITY_DECISION,
  matchConfidence,
  trackMean,
  type Gallery,
  type TrackIdentity,
} from '@faceflow/engine/match';
import { iou as boxIou, l2, type Box } from '@faceflow/shared';

/** A face box: shared's Box, the one definition (issue 13). */
export type TrackBox = Box;

export interface TrackFace {
  frameId: string;
  faceIndex: number;
  captureTs: number;
  box: TrackBox;
  embedding: Float32Array;
  quality: number;
  cropRef?: string;
}

export interface TrackerOptions {
  /** A track not seen for this long (capture time) ends (default 2000 ms). */
  timeoutMs: number;
  /** Largest embedding distance to continue a track near its last position (default 0.55). */
  maxDistance: number;
  /** Largest embedding distance to continue a track anywhere in the frame (default 0.4). */
  reidDistance: number;
  /** Smallest IoU that counts as "near" (default 0.1); a centre within `maxCentreShift` face sizes also does. */
  minIou: number;
  maxCentreShift: number;
  /** Faces kept for the identity decision (default 5). */
  bestK: number;
  /** Faces under this quality (0..1) never count towards the identity (default DEFAULT_QUALITY_FLOOR). */
  qualityFloor: number;
}

export const DEFAULT_TRACKER_OPTIONS: TrackerOptions = {
  timeoutMs: 2000,
  maxDistance: 0.55,
  reidDistance: 0.4,
  minIou: 0.1,
  maxCentreShift: 1.5,
  bestK: 5,
  qualityFloor: DEFAULT_QUALITY_FLOOR,
};

/** Tracker gates for an embedding model whose same-person threshold is `threshold`. */
export function trackerOptionsFor(threshold: number, o: Partial<TrackerOptions> = {}): TrackerOptions {
  return { ...DEFAULT_TRACKER_OPTIONS, maxDistance: threshold * 0.85, reidDistance: threshold * 0.6, ...o };
}

export { LOW_QUALITY_DECISION, matchConfidence, type TrackIdentity };

export interface Track {
  id: string;
  cameraId: string;
  startTs: number;
  lastTs: number;
  box: TrackBox;
  faces: number;
  last: Float32Array;
  best: TrackFace[];
  mean: Float32Array;
  decision: TrackIdentity;
}

export interface DecideOptions {
  threshold: number;
  margin: number;
}


function centreShift(a: TrackBox, b: TrackBox): number {
  const dx = a.x + a.width / 2 - (b.x + b.width / 2);
  const dy = a.y + a.height / 2 - (b.y + b.height / 2);
  return Math.hypot(dx, dy) / Math.max(a.width, a.height, b.width, b.height, 1);
}

/** The L2-normalised mean of faces' embeddings (the track-identity rule's trackMean; an all-zero sum stays zero). */
function meanOf(faces: TrackFace[]): Float32Array {
  const sum = embeddingSum(faces.map((f) => f.embedding));
  return trackMean(sum, 0) ?? sum;
}

/**
 * The identity of an embedding against the gallery, as a track decision: the engine's one track-identity
 * rule (@faceflow/engine/match decideTrackIdentity), shared with the redaction tracker.
 */
export const decide: (embedding: Float32Array, gallery: Gallery | undefined, o: DecideOptions, support?: Float32Array[]) => TrackIdentity = decideTrackIdentity;

export class CameraTracker {
  private readonly tracks = new Map<string, Track>();
  private readonly o: TrackerOptions;

  constructor(
    readonly cameraId: string,
    options: Partial<TrackerOptions> = {},
  ) {
    this.o = { ...DEFAULT_TRACKER_OPTIONS, ...options };
  }

  get live(): Track[] {
    return [...this.tracks.values()];
  }

  /** Ends the tracks not seen since `captureTs - timeoutMs`; returns them. */
  expire(captureTs: number): Track[] {
    const ended: Track[] = [];
    for (const t of this.tracks.values()) {
      if (t.lastTs < captureTs - this.o.timeoutMs) {
        this.tracks.delete(t.id);
        ended.push(t);
      }
    }
    return ended;
  }

  /**
   * Associates the faces of one frame (same captureTs) with tracks; returns the track of each face, in
   * order, after updating it (and its identity decision). `ownIdentities`: each face's own identify()
   * answer (null under the quality floor), when the caller has them: saves a search per face.
   */
  update(faces: TrackFace[], gallery: Gallery | undefined, decideOptions: DecideOptions, ownIdentities?: ReadonlyArray<string | null>): Track[] {
    if (faces.length === 0) return [];
    const ts = faces[0]!.captureTs;
    this.expire(ts);
    const candidates = [...this.tracks.values()].filter((t) => t.lastTs < ts || t.lastTs === ts);
    // who each face is on its own: a face the gallery confidently names as someone other than a track's
    // person does not continue that track. Without this, a track followed a new face across a shot cut
    // (a sibling 0.3 away in embedding space, a few face widths off) and kept the first person's name for
    // the second (issue 3's sitcom check, --cooldown 0: "evan" over eddie's face).
    // `ownIdentities`: the caller searched each face already (the matcher stage, under the same rule and floor)
    const own = gallery && gallery.size > 0 && candidates.some((t) => t.decision.identity !== null)
      ? ownIdentities ?? faces.map((face) =>
          // a face under the quality floor names no one, so it splits nothing either
          face.quality < this.o.qualityFloor ? null : identify(face.embedding, gallery, { threshold: decideOptions.threshold, margin: decideOptions.margin }).identity,
        )
      : faces.map(() => null);
    const pairs: { f: number; t: Track; cost: number }[] = [];
    faces.forEach((face, f) => {
      for (const t of candidates) {
        if (t.last.length !== face.embedding.length) continue;
        const named = t.decision.identity;
        if (named !== null && own[f] !== null && own[f] !== named) continue;
        // near its last position: close to its last face; anywhere: close to its last face and its mean
        // (a chain of small steps must not walk a track from one person to the next across shot cuts)
        const d = l2(face.embedding, t.last);
        const dMean = l2(face.embedding, t.mean);
        const iou = boxIou(face.box, t.box);
        const near = iou >= this.o.minIou || centreShift(face.box, t.box) <= this.o.maxCentreShift;
        const anywhere = Math.max(d, dMean) <= this.o.reidDistance;
        if ((near && d <= this.o.maxDistance && dMean <= this.o.maxDistance * 1.2) || anywhere) pairs.push({ f, t, cost: d - 0.2 * iou });
      }
    });
    pairs.sort((a, b) => a.cost - b.cost);
    const assigned = new Array<Track | undefined>(faces.length);
    const taken = new Set<Track>();
    for (const p of pairs) {
      if (assigned[p.f] || taken.has(p.t)) continue;
      assigned[p.f] = p.t;
      taken.add(p.t);
    }
    return faces.map((face, f) => {
      let t = assigned[f];
      if (!t) {
        t = {
          id: `${this.cameraId}:${face.frameId}:${face.faceIndex}`,
          cameraId: this.cameraId,
          startTs: face.captureTs,
          lastTs: face.captureTs,
          box: face.box,
          faces: 0,
          last: face.embedding,
          best: [],
          mean: face.embedding,
          decision: { identity: null, distance: null, confidence: 0, reason: 'empty-gallery' },
        };
        this.tracks.set(t.id, t);
      }
      this.addFace(t, face);
      t.decision = this.decideTrack(t, gallery, decideOptions);
      return t;
    });
  }

  /** The track's identity from its best faces at or above the quality floor only. */
  private decideTrack(t: Track, gallery: Gallery | undefined, o: DecideOptions): TrackIdentity {
    if (!gallery || gallery.size === 0) return decide(t.mean, gallery, o);
    // `best` is sorted by quality, so the faces that may speak are its head
    const named = t.best.filter((b) => b.quality >= this.o.qualityFloor);
    if (named.length === 0) return { ...LOW_QUALITY_DECISION };
    const mean = named.length === t.best.length ? t.mean : meanOf(named);
    return decide(mean, gallery, o, named.map((b) => b.embedding));
  }

  private addFace(t: Track, face: TrackFace): void {
    t.faces++;
    t.lastTs = Math.max(t.lastTs, face.captureTs);
    t.box = face.box;
    t.last = face.embedding;
    t.best.push(face);
    t.best.sort((a, b) => b.quality - a.quality);
    if (t.best.length > this.o.bestK) t.best.length = this.o.bestK;
    t.mean = meanOf(t.best);
  }
}
