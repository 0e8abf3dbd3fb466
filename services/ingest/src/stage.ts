/**
 * The ingest stage: captured images (from a source or the HTTP push API) -> Frame messages on the frames
 * topic, keyed by camera id. Memory stays bounded:
 * - a file or folder source waits for the bus (publish backpressure): nothing is dropped, the source is
 *   simply read more slowly;
 * - a live source cannot wait: each camera has a queue of `maxQueue` frames; a new frame pushes out the
 *   oldest one (reason "queue_full"), and a frame older than `maxAgeMs` when its turn comes is dropped
 *   (reason "stale"); both are counted;
 * - a pushed frame (HTTP) is refused with OVERLOADED (HTTP 429) while `maxInFlight` publishes are pending,
 *   and with TRANSPORT (HTTP 503 + Retry-After) at once when the broker is known to be down (`available`), or
 *   when Kafka has not taken it within `pushTimeoutMs` (issue 12: pushes used to block ~22 s in kafkajs's
 *   retries). A publish that outlives the timeout still counts against `maxInFlight` until it settles, and may
 *   still land: the client retries a 503, so the frame can arrive twice (at-least-once).
 */
import { randomBytes } from 'node:crypto';
import {
  FaceflowError,
  FrameSchema,
  silentLogger,
  sleep,
  backoffMs,
  toFaceflowError,
  type Counter,
  type Frame,
  type FrameContentType,
  type Gauge,
  type Logger,
  type Metrics,
  type OutgoingMessage,
} from '@faceflow/shared';
import type { CapturedImage, FrameSource } from './sources.js';

export interface IngestStageOptions {
  publish: (topic: string, messages: OutgoingMessage[]) => Promise<void>;
  framesTopic: string;
  /** Frames queued per live camera (default 4). */
  maxQueue?: number;
  /** A live frame older than this is not sent (default 2000 ms). */
  maxAgeMs?: number;
  /** Pending publishes of pushed frames before OVERLOADED (default 64). */
  maxInFlight?: number;
  /** How long a push waits for Kafka before it is refused with 503 (default 3000 ms). */
  pushTimeoutMs?: number;
  /** Whether the bus can take frames now (the broker check of health.ts); false refuses pushes at once. */
  available?: () => boolean;
  metrics?: Metrics;
  logger?: Logger;
  now?: () => number;
}

export interface PumpResult {
  read: number;
  sent: number;
  dropped: Record<string, number>;
}

/** The Frame message of a captured image (validated; what the embedder will decode). */
export function frameMessage(cameraId: string, frameId: string, c: Pick<CapturedImage, 'image' | 'contentType' | 'captureTs'> & { width?: number; height?: number }, recorded = false): OutgoingMessage {
  const frame: Frame = { frameId, cameraId, captureTs: c.captureTs, contentType: c.contentType, image: c.image };
  if (c.width !== undefined) frame.width = c.width;
  if (c.height !== undefined) frame.height = c.height;
  if (recorded) frame.recorded = true;
  return { key: cameraId, value: FrameSchema.encode(frame) };
}

/** The error of a push that cannot be handed to Kafka now: 503, with the ops server's Retry-After. */
function unavailable(why: string, cause?: unknown): FaceflowError {
  return new FaceflowError('TRANSPORT', `frame not accepted: ${why}; retry later`, { cause });
}

export class IngestStage {
  private readonly o: Required<Omit<IngestStageOptions, 'metrics' | 'logger' | 'available'>> & Pick<IngestStageOptions, 'metrics' | 'available'>;
  private readonly logger: Logger;
  private inFlight = 0;
  private stopped = false;
  private readonly session = randomBytes(4).toString('hex');
  private seq = 0;
  private readonly sources = new Set<FrameSource>();
  private readonly m: { in?: Counter<'stage'>; out?: Counter<'stage'>; dropped?: Counter<'stage' | 'reason'>; queue?: Gauge<'camera'> };

  constructor(options: IngestStageOptions) {
    this.o = { maxQueue: 4, maxAgeMs: 2000, maxInFlight: 64, pushTimeoutMs: 3000, now: Date.now, ...options };
    this.logger = options.logger ?? silentLogger;
    const mt = options.metrics;
    this.m = mt
      ? {
          in: mt.counter({ name: 'frames_in_total', help: 'Frames that entered a stage', labelNames: ['stage'] as const }),
          out: mt.counter({ name: 'frames_out_total', help: 'Frames a stage finished (published or, for ingest, sent on)', labelNames: ['stage'] as const }),
          dropped: mt.counter({ name: 'frames_dropped_total', help: 'Frames dropped, by stage and reason', labelNames: ['stage', 'reason'] as const }),
          queue: mt.gauge({ name: 'ingest_queue_frames', help: 'Frames queued per live camera', labelNames: ['camera'] as const }),
        }
      : {};
  }

  nextFrameId(cameraId: string): string {
    return `${cameraId}-${this.session}-${(this.seq++).toString(36)}`;
  }

  private drop(reason: string, result?: PumpResult): void {
    this.m.dropped?.inc({ stage: 'ingest', reason });
    if (result) result.dropped[reason] = (result.dropped[reason] ?? 0) + 1;
  }

  /** Publishes one frame, retrying what is retriable (until stopped). */
  private async send(cameraId: string, c: CapturedImage, recorded = false): Promise<void> {
    const msg = frameMessage(cameraId, this.nextFrameId(cameraId), c, recorded);
    for (let attempt = 1; ; attempt++) {
      try {
        await this.o.publish(this.o.framesTopic, [msg]);
        this.m.out?.inc({ stage: 'ingest' });
        return;
      } catch (e) {
        const err = toFaceflowError(e, 'TRANSPORT');
        if (!err.retriable || this.stopped) throw err;
        this.logger.warn('frame publish failed; retrying', { cameraId, attempt, code: err.code, error: err.message });
        await sleep(backoffMs(attempt));
      }
    }
  }

  /**
   * Pushed frame (HTTP API): validated and published; OVERLOADED (429) while too many are pending.
   * Resolves with the frame id once the frame is on the bus.
   */
  async push(cameraId: string, image: Buffer, contentType: FrameContentType, captureTs: number): Promise<string> {
    if (this.stopped) throw new FaceflowError('OVERLOADED', 'ingest is shutting down');
    this.m.in?.inc({ stage: 'ingest' });
    if (this.inFlight >= this.o.maxInFlight) {
      this.drop('overloaded');
      throw new FaceflowError('OVERLOADED', `${this.inFlight} frames are waiting for the bus; try again later`);
    }
    if (this.o.available && !this.o.available()) {
      this.drop('unavailable');
      throw unavailable('the broker is not answering');
    }
    const frameId = this.nextFrameId(cameraId);
    const msg = frameMessage(cameraId, frameId, { image, contentType, captureTs });
    this.inFlight++;
    const published = this.o.publish(this.o.framesTopic, [msg]).finally(() => this.inFlight--);
    let timer: NodeJS.Timeout | undefined;
    const late = unavailable(`Kafka did not take the frame within ${this.o.pushTimeoutMs} ms`);
    try {
      await Promise.race([published, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(late), this.o.pushTimeoutMs)))]);
    } catch (e) {
      // the late outcome of a timed-out publish is nobody's business any more
      published.catch(() => undefined);
      const err = toFaceflowError(e, 'TRANSPORT');
      this.drop(err.retriable ? 'unavailable' : 'publish_failed');
      throw err === late || !err.retriable ? err : unavailable(err.message, err);
    } finally {
      clearTimeout(timer);
    }
    this.m.out?.inc({ stage: 'ingest' });
    return frameId;
  }

  /** Reads a source to its end (or until stop()), sending its frames. */
  async pump(source: FrameSource): Promise<PumpResult> {
    const result: PumpResult = { read: 0, sent: 0, dropped: {} };
    this.sources.add(source);
    try {
      if (!source.live) {
        for await (const c of source) {
          if (this.stopped) break;
          result.read++;
          this.m.in?.inc({ stage: 'ingest' });
          await this.send(source.cameraId, c, true);
          result.sent++;
        }
        return result;
      }
      // live: a bounded queue between the camera and the bus
      const queue: CapturedImage[] = [];
      let ended = false;
      let wake: (() => void) | undefined;
      const sender = (async () => {
        for (;;) {
          while (queue.length === 0 && !ended && !this.stopped) await new Promise<void>((r) => (wake = r));
          if (this.stopped || (ended && queue.length === 0)) return;
          const c = queue.shift()!;
          this.m.queue?.set({ camera: source.cameraId }, queue.length);
          if (this.o.now() - c.captureTs > this.o.maxAgeMs) {
            this.drop('stale', result);
            continue;
          }
          await this.send(source.cameraId, c);
          result.sent++;
        }
      })();
      try {
        for await (const c of source) {
          if (this.stopped) break;
          result.read++;
          this.m.in?.inc({ stage: 'ingest' });
          if (queue.length >= this.o.maxQueue) {
            queue.shift();
            this.drop('queue_full', result);
          }
          queue.push(c);
          this.m.queue?.set({ camera: source.cameraId }, queue.length);
          wake?.();
        }
      } finally {
        ended = true;
        wake?.();
        await sender;
      }
      return result;
    } finally {
      this.sources.delete(source);
    }
  }

  /** Stops intake: sources are closed, pushes refused; pending sends finish. */
  stop(): void {
    this.stopped = true;
    for (const s of this.sources) s.close();
  }
}
