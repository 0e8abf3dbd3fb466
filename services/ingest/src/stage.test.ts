import { describe, expect, it } from 'vitest';
import { FrameSchema, FaceflowError, type OutgoingMessage } from '@faceflow/shared';
import { createMetrics } from '@faceflow/shared/ops';
import { IngestStage } from './stage.js';
import type { CapturedImage, FrameSource } from './sources.js';

const T0 = Date.UTC(2026, 0, 1);
const jpeg = (n: number): Buffer => Buffer.from([0xff, 0xd8, 0xff, 0xe0, n, 0x00, 0xff, 0xd9]);

function source(frames: CapturedImage[], live: boolean, gapMs = 0): FrameSource {
  let closed = false;
  return {
    cameraId: 'cam1',
    live,
    startTs: T0,
    close: () => void (closed = true),
    async *[Symbol.asyncIterator]() {
      for (const f of frames) {
        if (closed) return;
        if (gapMs) await new Promise((r) => setTimeout(r, gapMs));
        yield f;
      }
    },
  };
}

const frames = (n: number, ts = (i: number) => T0 + i * 100): CapturedImage[] =>
  Array.from({ length: n }, (_, i) => ({ image: jpeg(i), contentType: 'image/jpeg' as const, captureTs: ts(i) }));

describe('IngestStage', () => {
  it('sends every frame of a file source, in order, keyed by camera, as Frame messages', async () => {
    const sent: OutgoingMessage[] = [];
    const stage = new IngestStage({ framesTopic: 'frames', publish: async (_t, m) => void sent.push(...m) });
    const r = await stage.pump(source(frames(5), false));
    expect(r).toMatchObject({ read: 5, sent: 5, dropped: {} });
    const decoded = sent.map((m) => FrameSchema.decode(m.value));
    expect(sent.every((m) => m.key === 'cam1')).toBe(true);
    expect(decoded.map((f) => f.captureTs)).toEqual([0, 1, 2, 3, 4].map((i) => T0 + i * 100));
    expect(new Set(decoded.map((f) => f.frameId)).size).toBe(5);
    // read as fast as the bus takes them: never "late" for the embedder (lateFrameMs)
    expect(decoded.every((f) => f.recorded === true)).toBe(true);
  });

  it('marks no frame of a live source or a push as recorded', async () => {
    const sent: OutgoingMessage[] = [];
    const stage = new IngestStage({ framesTopic: 'frames', publish: async (_t, m) => void sent.push(...m) });
    await stage.pump(source(frames(2, () => Date.now()), true));
    await stage.push('cam2', jpeg(9), 'image/jpeg', Date.now());
    expect(sent).toHaveLength(3);
    expect(sent.map((m) => FrameSchema.decode(m.value).recorded)).toEqual([undefined, undefined, undefined]);
  });

  it('keeps memory bounded for a live source: drops the oldest when the queue is full, and stale frames', async () => {
    const metrics = createMetrics();
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let calls = 0;
    const now = Date.now();
    const stage = new IngestStage({
      framesTopic: 'frames',
      maxQueue: 2,
      maxAgeMs: 60_000,
      metrics,
      publish: async () => {
        if (calls++ === 0) await gate; // the bus is slow for the first frame
      },
    });
    const done = stage.pump(source(frames(6, () => now), true));
    await new Promise((r) => setTimeout(r, 20));
    release();
    const r = await done;
    expect(r.read).toBe(6);
    expect(r.sent + (r.dropped.queue_full ?? 0)).toBe(6);
    expect(r.dropped.queue_full).toBeGreaterThan(0);
    expect(await metrics.metricsText()).toMatch(/faceflow_frames_dropped_total\{stage="ingest",reason="queue_full"\} \d/);

    const old = new IngestStage({ framesTopic: 'frames', maxAgeMs: 1000, publish: async () => undefined });
    const stale = await old.pump(source(frames(3, () => Date.now() - 5000), true));
    expect(stale).toMatchObject({ sent: 0, dropped: { stale: 3 } });
  });

  it('answers OVERLOADED to a push while too many frames wait for the bus', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const stage = new IngestStage({ framesTopic: 'frames', maxInFlight: 1, publish: () => gate });
    const first = stage.push('cam1', jpeg(1), 'image/jpeg', T0);
    await expect(stage.push('cam1', jpeg(2), 'image/jpeg', T0)).rejects.toMatchObject({ code: 'OVERLOADED', retriable: true });
    release();
    expect(await first).toMatch(/^cam1-/);
  });

  it('retries a retriable publish failure', async () => {
    let calls = 0;
    const stage = new IngestStage({
      framesTopic: 'frames',
      publish: async () => {
        if (calls++ === 0) throw new FaceflowError('TRANSPORT', 'broker away');
      },
    });
    expect((await stage.pump(source(frames(1), false))).sent).toBe(1);
    expect(calls).toBe(2);
  });
});
