import { describe, expect, it } from 'vitest';
import { FaceflowError, silentLogger, type Metrics } from '@faceflow/shared';
import { createMetrics } from '@faceflow/shared/ops';
import type { CapturedImage, FrameSource } from './sources.js';
import type { PumpResult } from './stage.js';
import { maskCredentials, SourceSupervisor } from './supervisor.js';

function fakeSource(frames: number, live: boolean): FrameSource {
  return {
    cameraId: 'cam',
    live,
    startTs: 0,
    close: () => undefined,
    async *[Symbol.asyncIterator](): AsyncGenerator<CapturedImage> {
      for (let i = 0; i < frames; i++) yield { image: Buffer.alloc(1), contentType: 'image/jpeg', captureTs: i };
    },
  };
}

async function pump(s: FrameSource): Promise<PumpResult> {
  let read = 0;
  for await (const _ of s) read++;
  return { read, sent: read, dropped: {} };
}

/** A supervisor whose sleeps return at once and are recorded. */
function supervise(open: (onError: (m: string) => void) => Promise<FrameSource>, o: { live?: boolean; metrics?: Metrics; stopAfter?: number } = {}) {
  const delays: number[] = [];
  const stop = new AbortController();
  const sup = new SourceSupervisor({
    cameraId: 'cam',
    source: o.live ? 'rtsp://user:secret@camera/stream' : '/videos/late.mp4',
    live: o.live ?? false,
    open,
    pump,
    retryMaxMs: 8000,
    logger: silentLogger,
    ...(o.metrics ? { metrics: o.metrics } : {}),
    signal: stop.signal,
    random: () => 0.5,
    sleep: async (ms) => {
      delays.push(ms);
      if (o.stopAfter !== undefined && delays.length >= o.stopAfter) stop.abort();
    },
  });
  return { sup, delays };
}

describe('SourceSupervisor', () => {
  it('a_source_that_fails_then_works_is_retried_with_backoff_counted_and_reported', async () => {
    const metrics = createMetrics();
    let opens = 0;
    const { sup, delays } = supervise(async () => {
      if (++opens <= 3) throw new FaceflowError('INVALID_ARGUMENT', 'cannot read video /videos/late.mp4: No such file or directory');
      return fakeSource(5, false);
    }, { metrics });
    const status = await sup.run();
    expect(status).toMatchObject({ state: 'ended', errors: 3, read: 5, lastError: 'cannot read video /videos/late.mp4: No such file or directory' });
    expect(delays).toEqual([1000, 2000, 4000]);
    expect(await metrics.metricsText()).toMatch(/faceflow_ingest_source_errors_total\{source="cam"\} 3\n/);
  });

  it('a_live_stream_that_drops_comes_back (reopened, also when it ended cleanly), and its credentials are never shown', async () => {
    let opens = 0;
    const { sup, delays } = supervise(
      async (onError) => {
        opens++;
        if (opens === 2) onError('ffmpeg exited with code 1: rtsp://user:secret@camera/stream: Connection refused');
        return fakeSource(2, true);
      },
      { live: true, stopAfter: 3 },
    );
    const status = await sup.run();
    expect(opens).toBe(3);
    expect(status.state).toBe('stopped');
    expect(status.errors).toBe(3);
    // it delivered frames each time: the backoff starts over
    expect(delays).toEqual([1000, 1000, 1000]);
    expect(status.lastError).toBe('the stream ended');
    expect(maskCredentials('ffmpeg: rtsp://user:secret@camera/stream')).toBe('ffmpeg: rtsp://***@camera/stream');
  });

  it('a file that failed after it delivered frames is not read twice', async () => {
    let opens = 0;
    const { sup, delays } = supervise(async (onError) => {
      opens++;
      onError('ffmpeg exited with code 1: moov atom not found');
      return fakeSource(3, false);
    });
    const status = await sup.run();
    expect(opens).toBe(1);
    expect(delays).toEqual([]);
    expect(status).toMatchObject({ state: 'failed', errors: 1, read: 3 });
  });

  it('the backoff is capped', async () => {
    const { sup, delays } = supervise(async () => {
      throw new FaceflowError('NOT_FOUND', 'nope');
    }, { stopAfter: 6 });
    await sup.run();
    expect(delays).toEqual([1000, 2000, 4000, 8000, 8000, 8000]);
  });

  it('a file whose frames could not all be sent is not read twice either', async () => {
    let opens = 0;
    const stop = new AbortController();
    const sup = new SourceSupervisor({
      cameraId: 'cam',
      source: '/videos/a.mp4',
      live: false,
      open: async () => (opens++, fakeSource(4, false)),
      pump: async (src) => {
        for await (const _ of src) throw new FaceflowError('INVALID_MESSAGE', 'frame too large for the topic');
        return { read: 0, sent: 0, dropped: {} };
      },
      logger: silentLogger,
      signal: stop.signal,
      sleep: async () => undefined,
    });
    expect(await sup.run()).toMatchObject({ state: 'failed', errors: 1, read: 1, lastError: 'frame too large for the topic' });
    expect(opens).toBe(1);
  });
});
