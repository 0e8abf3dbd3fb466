/**
 * Keeps a pull source (FACEFLOW_INGEST_SOURCES) going (issue 12: a bad path or a non-video was swallowed
 * without a log line, a metric or a readiness change, and a camera that dropped never came back):
 *
 * - a failure (cannot open, ffmpeg exits with an error, a live stream ends) is logged at error level, counted
 *   (faceflow_ingest_source_errors_total{source}, source = the camera id: a URL may hold credentials) and
 *   shown in the source's status (/readyz body), then the source is opened again after backoffMs(attempt)
 *   (retry.ts), capped at `retryMaxMs`; the attempt count starts over once a run delivered frames;
 * - a file or folder that was read to its end is done (state "ended"); one that failed after it delivered
 *   frames is not read again (state "failed": re-reading would send its frames twice), while one that failed
 *   before any frame (not there yet, not a video yet) is retried;
 * - a live stream is always opened again, also when it ended cleanly (a camera that drops comes back).
 */
import { backoffMs, sleep, toFaceflowError, type BackoffOptions, type Counter, type Logger, type Metrics } from '@faceflow/shared';
import type { PumpResult } from './stage.js';
import type { FrameSource } from './sources.js';

export type SourceState = 'starting' | 'running' | 'failing' | 'failed' | 'ended' | 'stopped';

export interface SourceStatus {
  state: SourceState;
  /** Failures so far. */
  errors: number;
  lastError?: string;
  /** ms since the epoch of the last state change. */
  since: number;
  /** Frames read, all runs together. */
  read: number;
}

export interface SuperviseOptions {
  cameraId: string;
  /** What the source is (path or URL), for the logs; credentials in a URL are masked. */
  source: string;
  /** Whether it is a live stream (restarted when it ends). */
  live: boolean;
  /** Opens the source; `onError` receives a failure it reports after it opened (ffmpeg's exit). */
  open: (onError: (message: string) => void) => Promise<FrameSource>;
  pump: (source: FrameSource) => Promise<PumpResult>;
  /** Largest wait between attempts (default 30 s). */
  retryMaxMs?: number;
  logger: Logger;
  metrics?: Metrics;
  signal: AbortSignal;
  /** Injected in tests. */
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  random?: () => number;
}

/** A URL's user:password masked. */
export function maskCredentials(s: string): string {
  return s.replace(/\/\/[^/@\s]*@/g, '//***@');
}

export function sourceErrorsCounter(metrics: Metrics | undefined): Counter<'source'> | undefined {
  return metrics?.counter({ name: 'ingest_source_errors_total', help: 'Failures of a pull source (cannot open, ffmpeg failed, stream ended), by source (camera id)', labelNames: ['source'] as const });
}

export class SourceSupervisor {
  readonly status: SourceStatus = { state: 'starting', errors: 0, since: Date.now(), read: 0 };
  private readonly errors: Counter<'source'> | undefined;
  private readonly shown: string;

  constructor(private readonly o: SuperviseOptions) {
    this.errors = sourceErrorsCounter(o.metrics);
    this.errors?.inc({ source: o.cameraId }, 0);
    this.shown = maskCredentials(o.source);
  }

  private set(state: SourceState, error?: string): void {
    if (this.status.state !== state) this.status.since = Date.now();
    this.status.state = state;
    if (error !== undefined) this.status.lastError = error;
  }

  /** Runs until the source is done or the signal fires. */
  async run(): Promise<SourceStatus> {
    const o = this.o;
    const backoff: BackoffOptions = { initialMs: 1000, maxMs: o.retryMaxMs ?? 30_000, factor: 2, jitter: 0.2 };
    const wait = o.sleep ?? sleep;
    for (let attempt = 1; !o.signal.aborted; attempt++) {
      let failure: string | undefined;
      let read = 0;
      try {
        const source = await o.open((m) => (failure ??= m));
        if (o.signal.aborted) {
          source.close();
          break;
        }
        this.set('running');
        // frames are counted as they are read, so that a pump that throws midway still says it read some
        const counted: FrameSource = {
          cameraId: source.cameraId,
          live: source.live,
          startTs: source.startTs,
          close: () => source.close(),
          [Symbol.asyncIterator]: async function* () {
            for await (const c of source) {
              read++;
              yield c;
            }
          },
        };
        try {
          const r = await o.pump(counted);
          o.logger.info('source ended', { cameraId: o.cameraId, ...r });
        } finally {
          this.status.read += read;
        }
        if (o.signal.aborted) break;
        if (failure === undefined && !o.live) {
          this.set('ended');
          return this.status;
        }
        failure ??= 'the stream ended';
      } catch (e) {
        if (o.signal.aborted) break;
        failure = toFaceflowError(e).message;
      }
      const error = maskCredentials(failure.split(o.source).join(this.shown));
      this.status.errors++;
      this.errors?.inc({ source: o.cameraId });
      if (!o.live && read > 0) {
        o.logger.error('source failed; a file is not read twice, so it is not retried', { cameraId: o.cameraId, source: this.shown, error, read });
        this.set('failed', error);
        return this.status;
      }
      if (read > 0) attempt = 1; // it worked for a while: start the backoff over
      const delayMs = backoffMs(attempt, backoff, o.random);
      o.logger.error('source failed', { cameraId: o.cameraId, source: this.shown, error, attempt, retryInMs: delayMs });
      this.set('failing', error);
      try {
        await wait(delayMs, o.signal);
      } catch {
        break; // stopping
      }
    }
    this.set('stopped');
    return this.status;
  }
}
