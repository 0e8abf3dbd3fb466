/**
 * The embedder stage: Frame messages in, Face messages out (keyed by camera id). Frames of every partition
 * (camera) handled by this process meet in one dynamic batch (max size, max wait) in front of the engine
 * (an EnginePool with worker threads, or one FaceEngine); each face carries its embedding, box, 68
 * landmarks, detector score, the engine's quality score (size, sharpness, pose, detector) and, when a crop store is configured, a small crop ref.
 *
 * Video, not stills (scheduler.ts): with `fullDetectionEveryMs`, a camera's frame is looked at whole (and
 * tiled, for small faces) only that often; the frames in between are looked at only near the camera's
 * latest faces. With `reembedEveryMs`, a face followed from the previous frame is located only, and
 * embedded and published again when that much capture time has passed. Both default to 0 (every frame,
 * every face) here; the service and `faceflow run` set them for video (BENCHMARKS.md has what each costs).
 *
 * A frame that cannot be processed (not a frame, an image that does not decode, too large) is a
 * non-retriable failure: the transport dead-letters it with headers and the partition moves on. An engine
 * that is unavailable is retriable: the batch is re-run later, nothing is lost.
 */
import { decodeImage, type Box, type DetectedFace as EngineFace, type ImageLimits, type RgbImage, type RunOptions } from '@faceflow/engine';
import { imageFromRgb } from '@faceflow/engine/image';
import { faceQuality } from '@faceflow/engine/recognize';
import {
  FirstFailures,
  FaceflowError,
  FaceSchema,
  FrameSchema,
  toFaceflowError,
  type ConsumedMessage,
  type Face,
  type Frame,
  type HandlerContext,
  type Histogram,
  type Metrics,
  type Counter,
  type CropStore,
  type Stage,
  type StageFailure,
  type StageResult,
  type Logger,
  redactionExempt,
  silentLogger,
} from '@faceflow/shared';
import { performance } from 'node:perf_hooks';
import { Batcher } from './batcher.js';
import { faceCropJpeg } from './crops.js';
import { DetectionScheduler, LATE_REEMBED_FACTOR } from './scheduler.js';
import { faceMaskPolygon, type EmbedderMaskMethod } from './face-mask.js';

/** What the stage needs of the engine: FaceEngine and EnginePool both fit. */
export interface FaceRunner {
  /** `placement.split: false`: run the batch on one worker (EnginePool; FaceEngine has one anyway) */
  run(images: RgbImage[], options?: RunOptions, placement?: { split?: boolean }): Promise<EngineFace[][]>;
  readonly embedderInfo: { name: string; dim: number };
}

export interface EmbedderStageOptions {
  runner: FaceRunner;
  facesTopic: string;
  /** Frames in one engine batch (default 8). */
  maxBatch?: number;
  /** How long the first frame of a batch waits for more (default 20 ms). */
  maxWaitMs?: number;
  /** Engine batches running at once (default 1; the pool spreads one batch over its workers). */
  maxInFlight?: number;
  /** Faces kept per frame, best detector score first (default 32). */
  maxFacesPerFrame?: number;
  /**
   * Capture time between full detections of a camera (default 0: every frame); in between, faces are
   * looked for only near the camera's latest faces (scheduler.ts).
   */
  fullDetectionEveryMs?: number;
  /**
   * A face followed from the camera's previous frame is embedded (and published) again only after this
   * much capture time (default 0: every frame); in between it is located only, which keeps the regions
   * on it (scheduler.ts). Each track still gets a face every this often for the matcher.
   */
  reembedEveryMs?: number;
  /**
   * A live frame (not `recorded`) that reaches the engine more than this long after it was published (the
   * engine is behind: a burst of new faces) re-embeds the faces it follows only every LATE_REEMBED_FACTOR x reembedEveryMs,
   * so that repeat embeddings, most of the engine's work on video, are shed before they delay new faces
   * (default 0: never; the service and `faceflow run` set it).
   */
  lateFrameMs?: number;
  /** Decoding limits for frame images (default: the engine's). */
  imageLimits?: ImageLimits;
  crops?: CropStore;
  /** The face outline put in each Face message (default 'landmarks'; see face-mask.ts). */
  mask?: EmbedderMaskMethod;
  /** Cameras whose crops keep the neighbouring faces (default none: every crop hides them; see crops.ts). */
  redactExemptCameras?: readonly string[];
  metrics?: Metrics;
  logger?: Logger;
}

/** How old (capture time) the latest known faces of a camera may be for a region frame not to wait. */
const REGION_STALE_MS = 450;

interface Work {
  frame: Frame;
  image: RgbImage;
  /** look only near these boxes; undefined: full detection */
  regions: Box[] | undefined;
  /** faces over these boxes are located only */
  trackOnlyNear: Box[];
}

function round(v: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}

/** Float32 embedding -> plain numbers, re-normalised in double precision (the schema checks |e| = 1 ± 1e-3). */
export function embeddingToArray(e: Float32Array): number[] {
  let n = 0;
  for (const v of e) n += v * v;
  n = Math.sqrt(n) || 1;
  return Array.from(e, (v) => round(v / n, 7));
}

export async function decodeFrameImage(frame: Frame, limits?: ImageLimits): Promise<RgbImage> {
  if (frame.contentType === 'image/x-raw-rgb') return imageFromRgb(frame.image, frame.width!, frame.height!);
  if (frame.contentType === 'image/x-raw-rgba') {
    const n = frame.width! * frame.height!;
    const rgb = new Uint8Array(n * 3);
    for (let i = 0; i < n; i++) {
      rgb[i * 3] = frame.image[i * 4]!;
      rgb[i * 3 + 1] = frame.image[i * 4 + 1]!;
      rgb[i * 3 + 2] = frame.image[i * 4 + 2]!;
    }
    return imageFromRgb(rgb, frame.width!, frame.height!);
  }
  return decodeImage(frame.image, limits);
}

export class EmbedderStage implements Stage {
  readonly name = 'embedder';
  /** full detections */
  private readonly batcher: Batcher<Work, EngineFace[]>;
  /** detections near known faces */
  private readonly regionBatcher: Batcher<Work, EngineFace[]>;
  private readonly o: Required<Pick<EmbedderStageOptions, 'maxBatch' | 'maxWaitMs' | 'maxFacesPerFrame'>> & EmbedderStageOptions;
  private readonly logger: Logger;
  private readonly scheduler: DetectionScheduler;
  /** per camera: settles when its latest submitted frame has its result */
  private readonly cameraTails = new Map<string, Promise<void>>();
  /** Failed messages counted once (the dead-letter policy runs them through process() again). */
  private readonly failedOnce = new FirstFailures();
  private readonly m: {
    framesIn?: Counter<'stage'>;
    framesOut?: Counter<'stage'>;
    dropped?: Counter<'stage' | 'reason'>;
    faces?: Counter<'stage'>;
    batchSize?: Histogram;
    inference?: Histogram;
    decode?: Histogram;
    phase?: Histogram<'phase'>;
    detections?: Counter<'kind'>;
    followed?: Counter;
    deferred?: Counter;
    late?: Counter;
  };

  constructor(options: EmbedderStageOptions) {
    this.o = { maxBatch: 8, maxWaitMs: 20, maxFacesPerFrame: 32, ...options };
    this.logger = options.logger ?? silentLogger;
    this.scheduler = new DetectionScheduler(options.fullDetectionEveryMs ?? 0);
    const mt = options.metrics;
    this.m = mt
      ? {
          framesIn: mt.counter({ name: 'frames_in_total', help: 'Frames that entered a stage', labelNames: ['stage'] as const }),
          framesOut: mt.counter({ name: 'frames_out_total', help: 'Frames a stage finished (published or, for ingest, sent on)', labelNames: ['stage'] as const }),
          dropped: mt.counter({ name: 'frames_dropped_total', help: 'Frames dropped, by stage and reason', labelNames: ['stage', 'reason'] as const }),
          faces: mt.counter({ name: 'faces_total', help: 'Faces detected and embedded', labelNames: ['stage'] as const }),
          batchSize: mt.histogram({ name: 'embedder_batch_size', help: 'Frames per engine batch', buckets: [1, 2, 4, 8, 16, 32, 64] }),
          inference: mt.histogram({ name: 'embedder_inference_seconds', help: 'Engine time of one batch (detection, landmarks, embedding)' }),
          decode: mt.histogram({ name: 'embedder_decode_seconds', help: 'Time to decode one frame image' }),
          // where a frame's time in the embedder goes, for latency tails: before the engine (decoding, waiting
          // for the camera's previous frame) and in it (batch queue, worker queue, the run itself)
          phase: mt.histogram({
            name: 'embedder_frame_phase_seconds',
            help: 'Per frame: time from its arrival to its engine submission (phase="wait", decoding included) and from submission to its result (phase="engine", queues included)',
            labelNames: ['phase'] as const,
            buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1, 1.5, 2.5, 5],
          }),
          deferred: mt.counter({ name: 'embedder_full_detections_deferred_total', help: 'Full detections put off because the camera\'s previous one was still running (the engine is behind)' }),
          late: mt.counter({ name: 'embedder_late_frames_total', help: 'Frames that reached the engine later than lateFrameMs after they were published (the engine is behind): their followed faces were re-embedded less often' }),
          followed: mt.counter({ name: 'embedder_faces_followed_total', help: 'Faces located near a face embedded a moment ago, and not embedded again (reembed interval)' }),
          detections: mt.counter({ name: 'embedder_detections_total', help: 'Frames by detection kind: full (whole frame and tiles) or region (near the last faces)', labelNames: ['kind'] as const }),
        }
      : {};
    // full detections (video scheduling on): one frame per batch, each on one worker, as many at once as
    // there are workers. A full detection is the slow frame of its camera (8-17 windows, and its new faces'
    // landmarks and embeddings), and every frame of its Kafka batch waits for it: batching two or three
    // cameras' full detections onto one worker made each wait for all (BENCHMARKS.md, "where the time
    // goes": embedder p99 1.5 s, capture-to-event p99 1.9 s; one per batch, on either worker: 1.2 / 0.9 s).
    // Region frames: batched, spread over the workers.
    this.batcher = new Batcher<Work, EngineFace[]>({
      maxBatch: this.o.fullDetectionEveryMs ? 1 : this.o.maxBatch,
      maxWaitMs: this.o.maxWaitMs,
      maxInFlight: this.o.maxInFlight ?? 1,
      onBatch: (n) => this.m.batchSize?.observe({}, n),
      run: (items) => this.runBatch(items, this.o.fullDetectionEveryMs ? { split: false } : {}),
    });
    this.regionBatcher = new Batcher<Work, EngineFace[]>({
      maxBatch: this.o.maxBatch,
      maxWaitMs: this.o.maxWaitMs,
      maxInFlight: this.o.maxInFlight ?? 1,
      onBatch: (n) => this.m.batchSize?.observe({}, n),
      run: (items) => this.runBatch(items),
    });
  }

  get model(): string {
    return this.o.runner.embedderInfo.name;
  }

  /** Engine options for these frames: each frame's regions and faces to follow, when any has some. */
  private optionsFor(items: Work[]): RunOptions {
    const opts: RunOptions = { maxFaces: this.o.maxFacesPerFrame };
    if (items.some((w) => w.regions)) opts.regions = items.map((w) => w.regions);
    if (items.some((w) => w.trackOnlyNear.length > 0)) opts.trackOnlyNear = items.map((w) => w.trackOnlyNear);
    return opts;
  }

  private async runBatch(items: Work[], placement: { split?: boolean } = {}): Promise<Array<EngineFace[] | Error>> {
    const end = this.m.inference?.startTimer();
    try {
      return await this.o.runner.run(
        items.map((w) => w.image),
        this.optionsFor(items),
        placement,
      );
    } catch (e) {
      const err = toFaceflowError(e);
      if (err.retriable || items.length === 1) throw err;
      // one bad frame must not fail its batch-mates: run them one by one
      return Promise.all(
        items.map((w) =>
          this.o.runner.run([w.image], this.optionsFor([w]), placement).then(
            (r) => r[0]!,
            (x: unknown) => toFaceflowError(x),
          ),
        ),
      );
    } finally {
      end?.();
    }
  }

  /**
   * Runs one frame through the engine, with a full detection or one near the camera's latest faces
   * (scheduler.ts). A region frame whose camera's known faces are stale waits for the camera's previous
   * region frame, so that it looks where the faces are now, unless the frame is late (lateFrameMs): then
   * waiting chains the camera's frames one engine call apart, a camera that fell behind stays behind (each
   * wait makes the next frame later still), so a late frame looks near the faces last known. Full
   * detections need no history: they start at once,
   * in batches of their own (a 17-window full detection must not hold up the cheap region frames batched
   * with it), and the faces they find join the regions of the frames planned after they finish.
   */
  private async detectAndEmbed(frame: Frame, decode: () => Promise<RgbImage>, publishedTs: number | undefined): Promise<{ image: RgbImage; faces: EngineFace[] }> {
    // decided before the first await, so in the order the frames came (decoding may finish out of order)
    const camera = frame.cameraId;
    const deferredBefore = this.scheduler.deferred;
    const full = this.scheduler.wantsFull(camera, frame.captureTs);
    if (this.scheduler.deferred > deferredBefore) this.m.deferred?.inc();
    const previous = full ? undefined : this.cameraTails.get(camera);
    let finished: (() => void) | undefined;
    const tail = full ? undefined : new Promise<void>((r) => (finished = r));
    if (tail) this.cameraTails.set(camera, tail);
    const arrived = performance.now();
    const late = !frame.recorded && this.isLate(publishedTs);
    if (late) this.m.late?.inc();
    try {
      const image = await decode();
      // wait for the camera's previous frame only when what is known of the camera is stale: a result a
      // frame or two old is as good a place to look (regions are three faces wide), and not waiting lets a
      // camera's frames overlap in the engine
      if (previous && !late && !this.scheduler.hasResultSince(camera, frame.captureTs - REGION_STALE_MS)) await previous;
      const regions = full ? undefined : this.scheduler.regions(camera, frame.captureTs);
      const reembedMs = (this.o.reembedEveryMs ?? 0) * (late ? LATE_REEMBED_FACTOR : 1);
      const trackOnlyNear = this.scheduler.recentlyEmbedded(camera, frame.captureTs, reembedMs);
      this.m.detections?.inc({ kind: full ? 'full' : 'region' });
      const submitted = performance.now();
      this.m.phase?.observe({ phase: 'wait' }, (submitted - arrived) / 1000);
      const faces = await (full ? this.batcher : this.regionBatcher).submit({ frame, image, regions, trackOnlyNear });
      this.m.phase?.observe({ phase: 'engine' }, (performance.now() - submitted) / 1000);
      this.scheduler.observe(
        camera,
        frame.captureTs,
        faces.map((f) => ({ box: f.box, embedded: !f.trackOnly })),
        full,
      );
      const followed = faces.filter((f) => f.trackOnly).length;
      if (followed > 0) this.m.followed?.inc({}, followed);
      return { image, faces };
    } finally {
      if (full) this.scheduler.fullDone(camera);
      finished?.();
      if (tail && this.cameraTails.get(camera) === tail) this.cameraTails.delete(camera);
    }
  }

  /** Whether a frame published at `publishedTs` (the bus's timestamp) reaches the engine late (lateFrameMs). */
  private isLate(publishedTs: number | undefined): boolean {
    const limit = this.o.lateFrameMs ?? 0;
    return limit > 0 && publishedTs !== undefined && Number.isFinite(publishedTs) && Date.now() - publishedTs > limit;
  }

  /**
   * Frame -> its faces as messages (no publishing). Throws a FaceflowError for a frame that fails.
   * `publishedTs`: when the bus got the frame (its message timestamp), for lateFrameMs; absent: never late.
   */
  async embedFrame(frame: Frame, publishedTs?: number): Promise<Face[]> {
    const decode = async (): Promise<RgbImage> => {
      const endDecode = this.m.decode?.startTimer();
      try {
        return await decodeFrameImage(frame, this.o.imageLimits);
      } catch (e) {
        const err = toFaceflowError(e, 'INVALID_IMAGE');
        // the same bytes fail the same way: even a decode timeout is not worth retrying forever
        throw err.retriable ? new FaceflowError(err.code, err.message, { cause: err, retriable: false, details: err.details }) : err;
      } finally {
        endDecode?.();
      }
    };
    const { image, faces } = await this.detectAndEmbed(frame, decode, publishedTs);
    const out: Face[] = [];
    for (const [i, f] of faces.entries()) {
      if (!f.embedding || !(f.box.width > 0) || !(f.box.height > 0)) continue;
      const face: Face = {
        frameId: frame.frameId,
        cameraId: frame.cameraId,
        captureTs: frame.captureTs,
        faceIndex: i,
        box: { x: round(f.box.x, 1), y: round(f.box.y, 1), width: round(f.box.width, 1), height: round(f.box.height, 1) },
        landmarks: f.landmarks.map((p) => [round(p.x, 1), round(p.y, 1)]),
        score: round(Math.min(1, Math.max(0, f.score)), 4),
        quality: round(Math.min(1, Math.max(0, faceQuality(image, f).score)), 4),
        embedding: embeddingToArray(f.embedding),
        model: this.model,
      };
      const mask = faceMaskPolygon(f.landmarks, this.o.mask ?? 'landmarks');
      if (mask) face.mask = mask;
      if (this.o.crops) {
        try {
          // the crop hides the other faces of the frame that reach into it, unless the camera is exempt
          const exempt = redactionExempt(this.o.redactExemptCameras ?? [], frame.cameraId);
          const others = exempt ? [] : faces.filter((_, j) => j !== i);
          face.cropRef = await this.o.crops.put(frame.cameraId, frame.frameId, i, await faceCropJpeg(image, f.box, 96, 1.3, others));
        } catch (e) {
          this.logger.warn('could not store a face crop', { frameId: frame.frameId, err: e });
        }
      }
      out.push(face);
    }
    return out;
  }

  async process(messages: ConsumedMessage[], _ctx: HandlerContext): Promise<StageResult> {
    const failures: StageFailure[] = [];
    this.m.framesIn?.inc({ stage: this.name }, messages.length);
    const results = await Promise.all(
      messages.map(async (m): Promise<Face[] | undefined> => {
        try {
          const frame = FrameSchema.decode(m.value);
          return await this.embedFrame(frame, m.timestamp);
        } catch (e) {
          const err = toFaceflowError(e);
          if (err.retriable) throw err;
          failures.push({ message: m, error: err });
          if (this.failedOnce.first(m)) this.m.dropped?.inc({ stage: this.name, reason: err.code.toLowerCase() });
          return undefined;
        }
      }),
    );
    const outgoing = results.flatMap((faces) => (faces ?? []).map((f) => ({ key: f.cameraId, value: FaceSchema.encode(f) })));
    this.m.framesOut?.inc({ stage: this.name }, results.filter((r) => r !== undefined).length);
    this.m.faces?.inc({ stage: this.name }, outgoing.length);
    failures.sort((a, b) => Number(BigInt(a.message.offset) - BigInt(b.message.offset)));
    return { outputs: [{ topic: this.o.facesTopic, messages: outgoing }], failures };
  }
}
