/**
 * Detection scheduling per camera: look at the whole frame (and its tiles, for small faces) only every
 * `fullEveryMs` of capture time; in between, look only near the faces of the camera's latest frame. This is
 * the detect-every-Nth-frame-and-track scheme of video analytics pipelines (DeepStream's nvinfer `interval`
 * with a tracker; MediaPipe's face mesh, which re-detects only when it loses the face): on a 720p frame a
 * full detection is 17 model windows, a region detection 1 or 2 of a four times cheaper model.
 *
 * The price, stated: a face that enters the picture is found at the next full detection, at most
 * `fullEveryMs` later; one that was missed at a full detection stays missed until the next one.
 *
 * State is an optimisation only: a camera this instance has not seen (first frame, or its partition came
 * over in a rebalance) gets a full detection; so does a frame older than the latest one by more than the
 * interval (a replay after a crash).
 */
import { type Box } from '@faceflow/engine';
import { iou } from '@faceflow/engine/match';

/**
 * Default for video and live streams: a full detection a second. On the sitcom clip at 5 fps this keeps
 * most of the faces full detection finds (BENCHMARKS.md) at a fraction of the cost.
 */
export const DEFAULT_FULL_DETECTION_EVERY_MS = 1000;

/**
 * Default for video and live streams: a face followed from frame to frame is embedded again every 400 ms
 * of capture time (every second or third frame at 5 fps), so a 2 s track still gives the matcher the five
 * faces it names the track from.
 */
export const DEFAULT_REEMBED_EVERY_MS = 400;

/**
 * Default for live streams: a frame more than 400 ms behind when it reaches the engine sheds repeat
 * embeddings (stage.ts lateFrameMs). Under the 1 s capture-to-event target with room for the matcher,
 * the alerts and a burst that is already queued (issue 11).
 */
export const DEFAULT_LATE_FRAME_MS = 400;

/**
 * How much a late frame stretches the re-embed interval of the faces it follows: at the 400 ms default a
 * followed face is embedded every 1.6 s while the engine is behind, so its track still gets faces.
 */
export const LATE_REEMBED_FACTOR = 4;

interface Result {
  ts: number;
  boxes: Box[];
  /** per box: capture time its face was last embedded (landmarked, embedded, published) */
  embeddedTs: number[];
  full: boolean;
}

interface CameraState {
  lastFullTs: number;
  lastTs: number;
  /** recent results by capture time, oldest first (at most HISTORY) */
  results: Result[];
}

const HISTORY = 16;

function overlaps(a: Box, b: Box): boolean {
  const w = Math.min(a.x + a.width, b.x + b.width) - Math.max(a.x, b.x);
  const h = Math.min(a.y + a.height, b.y + b.height) - Math.max(a.y, b.y);
  return w > 0 && h > 0 && w * h >= 0.2 * Math.min(a.width * a.height, b.width * b.height);
}

export class DetectionScheduler {
  private readonly cameras = new Map<string, CameraState>();
  private readonly fullInFlight = new Set<string>();
  /** full detections put off because the camera's previous one had not finished */
  deferred = 0;

  /**
   * @param fullEveryMs capture time between full detections of a camera; 0 = every frame is a full one
   * @param maxCameras cameras remembered at most (the least recently seen is forgotten first)
   */
  constructor(
    readonly fullEveryMs: number,
    private readonly maxCameras = 10_000,
  ) {
    if (!(fullEveryMs >= 0)) throw new RangeError('fullEveryMs must be >= 0');
  }

  /**
   * Whether this frame gets a full detection. A yes is reserved at once, so that the camera's next frames,
   * decided before this one's result is in, do not all become full detections too.
   */
  wantsFull(cameraId: string, captureTs: number): boolean {
    if (this.fullEveryMs === 0) return true;
    const s = this.cameras.get(cameraId);
    if (s && captureTs - s.lastFullTs < this.fullEveryMs && captureTs >= s.lastTs - this.fullEveryMs) return false;
    // under load a camera's full detections wait for each other: the interval stretches instead of a queue
    // of full detections growing (regions still follow the known faces meanwhile)
    if (s && this.fullInFlight.has(cameraId)) {
      this.deferred++;
      return false;
    }
    this.fullInFlight.add(cameraId);
    this.remember(cameraId, { lastFullTs: captureTs, lastTs: Math.max(s?.lastTs ?? captureTs, captureTs), results: s?.results ?? [] });
    return true;
  }

  /** The camera's newest result of a frame captured at or before `captureTs`. */
  private latestBefore(cameraId: string, captureTs: number): Result | undefined {
    let latest: Result | undefined;
    for (const r of this.cameras.get(cameraId)?.results ?? []) {
      if (r.ts > captureTs) break;
      latest = r;
    }
    return latest;
  }

  /**
   * Where to look in the camera's frame captured at `captureTs`: the faces of its newest earlier frame with
   * a result, plus those of its newest earlier full detection that that frame did not find again (a face
   * lost for a frame, a turned head, is looked for until the next full detection replaces the list). A
   * result of a later frame (a backlog processed out of order) is not used.
   */
  regions(cameraId: string, captureTs: number): Box[] {
    const latest = this.latestBefore(cameraId, captureTs);
    let latestFull: Result | undefined;
    for (const r of this.cameras.get(cameraId)?.results ?? []) {
      if (r.ts > captureTs) break;
      if (r.full) latestFull = r;
    }
    if (!latest) return [];
    if (!latestFull || latestFull === latest) return latest.boxes;
    return [...latest.boxes, ...latestFull.boxes.filter((b) => !latest.boxes.some((c) => overlaps(b, c)))];
  }

  /**
   * Boxes of the faces, in the newest earlier result, that were embedded less than `withinMs` before
   * `captureTs`: a face found over one of them is followed without being embedded again.
   */
  recentlyEmbedded(cameraId: string, captureTs: number, withinMs: number): Box[] {
    if (withinMs <= 0) return [];
    const latest = this.latestBefore(cameraId, captureTs);
    if (!latest) return [];
    return latest.boxes.filter((_, i) => captureTs - latest.embeddedTs[i]! < withinMs);
  }

  /** The camera's full detection (one that wantsFull said yes to) has finished, or failed. */
  fullDone(cameraId: string): void {
    this.fullInFlight.delete(cameraId);
  }

  /** Whether a result of a frame captured at or after `ts` is in. */
  hasResultSince(cameraId: string, ts: number): boolean {
    const results = this.cameras.get(cameraId)?.results;
    return results !== undefined && results.length > 0 && results[results.length - 1]!.ts >= ts;
  }

  /**
   * What a frame's detection found: each face's box and whether it was embedded in this frame (else it
   * inherits the embedding time of the face it continues, in the newest earlier result).
   */
  observe(cameraId: string, captureTs: number, faces: Array<{ box: Box; embedded: boolean }>, full: boolean): void {
    const s = this.cameras.get(cameraId);
    const before = this.latestBefore(cameraId, captureTs);
    const boxes = faces.map((f) => f.box);
    const embeddedTs = faces.map((f) => {
      if (f.embedded || !before) return captureTs;
      let best = -1;
      let bestIou = 0;
      before.boxes.forEach((b, i) => {
        const v = iou(b, f.box);
        if (v > bestIou) [best, bestIou] = [i, v];
      });
      // a followed face that cannot be traced back counts as embedded now: it is not skipped forever
      return best >= 0 ? before.embeddedTs[best]! : captureTs;
    });
    const results = [...(s?.results ?? [])];
    let at = results.length;
    while (at > 0 && results[at - 1]!.ts > captureTs) at--;
    results.splice(at, 0, { ts: captureTs, boxes, embeddedTs, full });
    if (results.length > HISTORY) results.splice(0, results.length - HISTORY);
    this.remember(cameraId, { lastFullTs: s?.lastFullTs ?? captureTs, lastTs: Math.max(s?.lastTs ?? captureTs, captureTs), results });
  }

  private remember(cameraId: string, s: CameraState): void {
    // Map order = insertion order: re-inserting keeps the most recently seen last
    this.cameras.delete(cameraId);
    this.cameras.set(cameraId, s);
    if (this.cameras.size > this.maxCameras) this.cameras.delete(this.cameras.keys().next().value!);
  }

  get size(): number {
    return this.cameras.size;
  }
}
