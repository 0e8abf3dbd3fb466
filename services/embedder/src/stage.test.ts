import { describe, expect, it } from 'vitest';
import { type DetectedFace as EngineFace, type RgbImage, type RunOptions } from '@faceflow/engine';
import { encodeJpeg } from '@faceflow/engine/image';
import { FaceSchema, FaceflowError, FrameSchema, stageHandler, withDeadLetter, type ConsumedMessage, type HandlerContext, type OutgoingMessage } from '@faceflow/shared';
import { createMetrics } from '@faceflow/shared/ops';
import { EmbedderStage, type FaceRunner } from './stage.js';

const ctx: HandlerContext = { signal: new AbortController().signal, heartbeat: async () => undefined, markProcessed: () => undefined };
const TS = Date.UTC(2026, 0, 1);
let offset = 0;

/** A stand-in for the engine (the engine has its own tests): one face per image, embedding from the image size. */
class FakeRunner implements FaceRunner {
  readonly embedderInfo = { name: 'fake-model', dim: 4 };
  batches: number[] = [];
  fail: FaceflowError | undefined;
  async run(images: RgbImage[]): Promise<EngineFace[][]> {
    this.batches.push(images.length);
    if (this.fail) throw this.fail;
    return images.map((img) => {
      const landmarks = Array.from({ length: 68 }, (_, i) => ({ x: 20 + (i % 10) * 4, y: 20 + Math.floor(i / 10) * 4 }));
      return [{ box: { x: 10, y: 10, width: 40, height: 40 }, score: 0.9, keypoints: [], landmarks, embedding: Float32Array.from([img.width, 1, 0, 0]).map((v, _i, a) => v / Math.hypot(...a)) }];
    });
  }
}

async function frameMsg(cameraId: string, frameId: string, image?: Buffer, captureTs = TS): Promise<ConsumedMessage> {
  const px = new Uint8Array(64 * 48 * 3).fill(128);
  const jpeg = image ?? (await encodeJpeg({ data: px, width: 64, height: 48 }));
  return {
    topic: 'frames',
    partition: 0,
    offset: String(offset++),
    key: cameraId,
    value: FrameSchema.encode({ frameId, cameraId, captureTs, contentType: 'image/jpeg', image: jpeg }),
    headers: {},
    timestamp: Date.now(),
  };
}

describe('EmbedderStage', () => {
  it('turns frames into Face messages keyed by camera, batching frames of several cameras together', async () => {
    const runner = new FakeRunner();
    const metrics = createMetrics();
    // a wait long enough that a loaded machine (the whole suite on 2 cores) still sees both calls within it
    const stage = new EmbedderStage({ runner, facesTopic: 'faces', maxBatch: 8, maxWaitMs: 250, metrics });
    const [a, b] = await Promise.all([
      stage.process([await frameMsg('cam1', 'a1'), await frameMsg('cam1', 'a2')], ctx),
      stage.process([await frameMsg('cam2', 'b1')], ctx),
    ]);
    expect(runner.batches).toEqual([3]);
    const faces = a!.outputs[0]!.messages.map((m) => ({ key: m.key, face: FaceSchema.decode(m.value) }));
    expect(faces.map((f) => [f.key, f.face.frameId, f.face.faceIndex])).toEqual([
      ['cam1', 'a1', 0],
      ['cam1', 'a2', 0],
    ]);
    expect(faces[0]!.face).toMatchObject({ cameraId: 'cam1', captureTs: TS, model: 'fake-model', score: 0.9 });
    expect(faces[0]!.face.landmarks).toHaveLength(68);
    expect(faces[0]!.face.quality).toBeGreaterThanOrEqual(0);
    expect(b!.outputs[0]!.messages[0]!.key).toBe('cam2');
    const text = await metrics.metricsText();
    expect(text).toMatch(/faceflow_embedder_batch_size_count 1/);
    expect(text).toMatch(/faceflow_frames_in_total\{stage="embedder"\} 3/);
  });

  it('reports a corrupt image and a malformed message as non-retriable failures, and processes the rest', async () => {
    const stage = new EmbedderStage({ runner: new FakeRunner(), facesTopic: 'faces', maxWaitMs: 5 });
    const good = await frameMsg('cam1', 'ok');
    const corrupt = await frameMsg('cam1', 'corrupt', Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), Buffer.alloc(100, 7)]));
    const garbage: ConsumedMessage = { ...good, offset: String(offset++), value: Buffer.from('not a frame') };
    const r = await stage.process([corrupt, good, garbage], ctx);
    expect(r.outputs[0]!.messages).toHaveLength(1);
    expect(r.failures!.map((f) => [f.message.offset, f.error.retriable])).toEqual([
      [corrupt.offset, false],
      [garbage.offset, false],
    ]);
    expect(r.failures![0]!.error.code).toMatch(/INVALID_IMAGE|UNSUPPORTED_FORMAT/);
    expect(r.failures![1]!.error.code).toBe('INVALID_MESSAGE');
  });

  it('throws a retriable engine error for the whole batch (the transport retries, nothing is dead-lettered)', async () => {
    const runner = new FakeRunner();
    runner.fail = new FaceflowError('BACKEND_UNAVAILABLE', 'no engine worker is alive');
    const stage = new EmbedderStage({ runner, facesTopic: 'faces', maxWaitMs: 1 });
    await expect(stage.process([await frameMsg('cam1', 'x')], ctx)).rejects.toMatchObject({ code: 'BACKEND_UNAVAILABLE', retriable: true });
  });
});

describe('EmbedderStage: detection scheduling', () => {
  /** Records the regions each image was run with; finds one face, moved 5 px right per call. */
  class Recording implements FaceRunner {
    readonly embedderInfo = { name: 'fake-model', dim: 4 };
    calls: Array<Array<unknown>> = [];
    /** a batch with a full detection in it takes this long */
    delayFull = 0;
    private x = 10;
    async run(images: RgbImage[], options?: RunOptions): Promise<EngineFace[][]> {
      this.calls.push(images.map((_, i) => options?.regions?.[i]));
      if (this.delayFull > 0 && images.some((_, i) => !options?.regions?.[i])) await new Promise((r) => setTimeout(r, this.delayFull));
      return images.map(() => {
        this.x += 5;
        const landmarks = Array.from({ length: 68 }, (_, i) => ({ x: this.x + 10 + (i % 10) * 3, y: 20 + Math.floor(i / 10) * 3 }));
        return [{ box: { x: this.x, y: 10, width: 40, height: 40 }, score: 0.9, keypoints: [], landmarks, embedding: Float32Array.from([1, 0, 0, 0]) }];
      });
    }
  }

  it('a_region_frame_looks_where_the_cameras_previous_frame_found_faces_even_in_the_same_batch', async () => {
    const runner = new Recording();
    const stage = new EmbedderStage({ runner, facesTopic: 'faces', maxBatch: 8, maxWaitMs: 5, fullDetectionEveryMs: 1000 });
    const face = (x: number) => [{ x, y: 10, width: 40, height: 40 }];
    await stage.process([await frameMsg('cam1', 'f0', undefined, TS)], ctx);
    // f1 and f2 arrive together: f0's faces are fresh enough for f1 (200 ms), not for f2 (500 ms), which
    // waits for f1's result and looks near it
    const r = await stage.process([await frameMsg('cam1', 'f1', undefined, TS + 200), await frameMsg('cam1', 'f2', undefined, TS + 500)], ctx);
    expect(r.outputs[0]!.messages).toHaveLength(2);
    await stage.process([await frameMsg('cam1', 'f3', undefined, TS + 1000)], ctx);
    // f0 full (finds x 15); f1 near it (finds x 20); f2 near f1's face; f3 full again (the interval passed)
    expect(runner.calls).toEqual([[undefined], [face(15)], [face(20)], [undefined]]);
  });

  it('a_full_detection_does_not_hold_up_the_region_frames_of_other_cameras', async () => {
    const runner = new Recording();
    runner.delayFull = 300;
    const stage = new EmbedderStage({ runner, facesTopic: 'faces', maxBatch: 8, maxWaitMs: 5, maxInFlight: 2, fullDetectionEveryMs: 1000 });
    await stage.process([await frameMsg('camA', 'a0', undefined, TS)], ctx);
    const order: string[] = [];
    const [b0, a1] = [await frameMsg('camB', 'b0', undefined, TS + 200), await frameMsg('camA', 'a1', undefined, TS + 200)];
    await Promise.all([
      stage.process([b0], ctx).then(() => order.push('camB full')), // camB's first frame: a full detection, slow
      stage.process([a1], ctx).then(() => order.push('camA region')),
    ]);
    expect(order).toEqual(['camA region', 'camB full']);
  });
});

describe('EmbedderStage: masks and crops', () => {
  /** Two faces side by side whose crops overlap, with landmarks inside their boxes. */
  class TwoFaces implements FaceRunner {
    readonly embedderInfo = { name: 'fake-model', dim: 4 };
    async run(images: RgbImage[]): Promise<EngineFace[][]> {
      const at = (x: number, e: number[]): EngineFace => ({
        box: { x, y: 40, width: 60, height: 60 },
        score: 0.9,
        keypoints: [],
        landmarks: Array.from({ length: 68 }, (_, i) => ({ x: x + 9 + (i % 10) * 4.2, y: 49 + Math.floor(i / 10) * 6 })),
        embedding: Float32Array.from(e),
      });
      return images.map(() => [at(40, [1, 0, 0, 0]), at(85, [0, 1, 0, 0])]);
    }
  }

  class MemoryCrops {
    readonly crops = new Map<string, Buffer>();
    async put(cameraId: string, frameId: string, faceIndex: number, jpeg: Buffer): Promise<string> {
      const ref = `mem://${cameraId}/${frameId}/${faceIndex}`;
      this.crops.set(ref, jpeg);
      return ref;
    }
  }

  async function rawFrame(cameraId: string, frameId: string): Promise<ConsumedMessage> {
    const width = 240, height = 120;
    const px = new Uint8Array(width * height * 3);
    for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) px.fill((x + y) % 2 ? 255 : 0, (y * width + x) * 3, (y * width + x) * 3 + 3);
    return {
      topic: 'frames',
      partition: 0,
      offset: String(offset++),
      key: cameraId,
      value: FrameSchema.encode({ frameId, cameraId, captureTs: TS, contentType: 'image/x-raw-rgb', width, height, image: Buffer.from(px) }),
      headers: {},
      timestamp: Date.now(),
    };
  }

  const facesOf = (r: { outputs: { messages: { value: Buffer }[] }[] }) => r.outputs[0]!.messages.map((m) => FaceSchema.decode(m.value));

  it('attaches the landmarks outline to every face by default, and none when asked', async () => {
    const byDefault = facesOf(await new EmbedderStage({ runner: new TwoFaces(), facesTopic: 'faces', maxWaitMs: 1 }).process([await rawFrame('cam1', 'm1')], ctx));
    expect(byDefault).toHaveLength(2);
    for (const f of byDefault) {
      expect(f.mask?.method).toBe('landmarks');
      expect(f.mask?.polygon).toHaveLength(27);
      // frame pixels: the jaw line is the first 17 landmarks
      expect(f.mask!.polygon.slice(0, 17)).toEqual(f.landmarks.slice(0, 17));
    }
    const none = facesOf(await new EmbedderStage({ runner: new TwoFaces(), facesTopic: 'faces', maxWaitMs: 1, mask: 'none' }).process([await rawFrame('cam1', 'm2')], ctx));
    expect(none.every((f) => f.mask === undefined)).toBe(true);
  });

  it('a stored crop hides the neighbouring faces, unless its camera is exempt from redaction', async () => {
    const crops = new MemoryCrops();
    const stage = new EmbedderStage({ runner: new TwoFaces(), facesTopic: 'faces', maxWaitMs: 1, crops, redactExemptCameras: ['staff-room'] });
    const [lobby] = facesOf(await stage.process([await rawFrame('lobby', 'c1')], ctx));
    const [staff] = facesOf(await stage.process([await rawFrame('staff-room', 'c1')], ctx));
    expect(lobby!.cropRef).toBe('mem://lobby/c1/0');
    expect(staff!.cropRef).toBe('mem://staff-room/c1/0');
    // the same pixels and faces: only the redaction of the neighbour tells the two crops apart
    expect(crops.crops.get(lobby!.cropRef!)!.equals(crops.crops.get(staff!.cropRef!)!)).toBe(false);
  });
});

describe('EmbedderStage failures', () => {
  it('counts_a_malformed_message_once_though_the_dead_letter_policy_runs_it_again', async () => {
    const metrics = createMetrics();
    const stage = new EmbedderStage({ runner: new FakeRunner(), facesTopic: 'faces', maxBatch: 8, maxWaitMs: 0, metrics });
    const published: Array<{ topic: string; messages: OutgoingMessage[] }> = [];
    const publish = async (topic: string, messages: OutgoingMessage[]): Promise<void> => void published.push({ topic, messages });
    const bad = (): ConsumedMessage => ({ topic: 'frames', partition: 0, offset: String(offset++), key: 'cam1', value: Buffer.from('not a frame'), headers: {}, timestamp: Date.now() });
    const handler = withDeadLetter(stageHandler(stage, publish), { publish, groupId: 'g' });
    await handler({ topic: 'frames', partition: 0, messages: [bad(), await frameMsg('cam1', 'ok1'), bad(), bad()] }, ctx);
    expect(published.filter((p) => p.topic === 'frames.dlq')).toHaveLength(3);
    expect(await metrics.metricsText()).toMatch(/faceflow_frames_dropped_total\{stage="embedder",reason="invalid_message"\} 3\n/);
  });
});

describe('EmbedderStage under load (lateFrameMs)', () => {
  /** Faces by frame id; honours trackOnlyNear as the engine does (a face over a given box is located only). */
  class FollowingRunner implements FaceRunner {
    readonly embedderInfo = { name: 'fake-model', dim: 4 };
    constructor(private readonly boxes: Record<string, Array<{ x: number; y: number }>>) {}
    async run(images: RgbImage[], options: RunOptions = {}): Promise<EngineFace[][]> {
      return images.map((_, i) => {
        const id = this.current.shift()!;
        return (this.boxes[id] ?? []).map(({ x, y }) => {
          const box = { x, y, width: 20, height: 20 };
          const trackOnly = (options.trackOnlyNear?.[i] ?? []).some((b) => Math.abs(b.x - x) < 5 && Math.abs(b.y - y) < 5);
          const landmarks = Array.from({ length: 68 }, (_, k) => ({ x: x + (k % 10) * 2, y: y + Math.floor(k / 10) * 2 }));
          return trackOnly
            ? { box, score: 0.9, keypoints: [], landmarks: [], trackOnly: true }
            : { box, score: 0.9, keypoints: [], landmarks, embedding: Float32Array.from([1, 0, 0, 0]) };
        });
      });
    }
    current: string[] = [];
  }

  it('a_late_frame_sheds_repeat_embeddings_but_still_embeds_new_faces_and_every_track_now_and_then', async () => {
    const A = { x: 2, y: 2 };
    const B = { x: 40, y: 20 };
    const runner = new FollowingRunner({ f0: [A], f1: [A], f2: [A, B], f3: [A], f4: [A] });
    const metrics = createMetrics();
    const stage = new EmbedderStage({ runner, facesTopic: 'faces', maxWaitMs: 1, reembedEveryMs: 400, lateFrameMs: 400, metrics });
    const embedded = async (id: string, captureOffset: number, publishedAgo: number): Promise<string[]> => {
      const m = { ...(await frameMsg('cam1', id, undefined, TS + captureOffset)), timestamp: Date.now() - publishedAgo };
      runner.current.push(id);
      const r = await stage.process([m], ctx);
      return r.outputs[0]!.messages.map((o) => { const f = FaceSchema.decode(o.value); return `${f.frameId}@${f.box.x}`; });
    };
    expect(await embedded('f0', 0, 0)).toEqual(['f0@2']); // new
    expect(await embedded('f1', 500, 0)).toEqual(['f1@2']); // on time, due (400 ms): embedded again
    // late from here on: A was embedded 500 ms ago, under 4 x 400 ms, so it is only followed; B is new
    expect(await embedded('f2', 1000, 1000)).toEqual(['f2@40']);
    expect(await embedded('f3', 1600, 1000)).toEqual([]);
    // A's last embedding was at 500: 1,700 ms ago, past 4 x 400, so even a late frame embeds it
    expect(await embedded('f4', 2200, 1000)).toEqual(['f4@2']);
    expect(await metrics.metricsText()).toMatch(/faceflow_embedder_late_frames_total 3/);
  });

  it('a_recorded_frame_is_never_late', async () => {
    const A = { x: 2, y: 2 };
    const runner = new FollowingRunner({ r0: [A], r1: [A] });
    const metrics = createMetrics();
    const stage = new EmbedderStage({ runner, facesTopic: 'faces', maxWaitMs: 1, reembedEveryMs: 400, lateFrameMs: 400, metrics });
    for (const [id, at] of [['r0', 0], ['r1', 500]] as const) {
      const m = await frameMsg('cam3', id, undefined, TS + at);
      const recorded = { ...m, value: FrameSchema.encode({ ...FrameSchema.decode(m.value), recorded: true }), timestamp: Date.now() - 5000 };
      runner.current.push(id);
      expect((await stage.process([recorded], ctx)).outputs[0]!.messages).toHaveLength(1); // embedded again at 400 ms
    }
    expect(await metrics.metricsText()).not.toMatch(/faceflow_embedder_late_frames_total [1-9]/);
  });

  it('a_frame_on_time_embeds_followed_faces_at_the_normal_interval', async () => {
    const A = { x: 2, y: 2 };
    const runner = new FollowingRunner({ g0: [A], g1: [A] });
    const stage = new EmbedderStage({ runner, facesTopic: 'faces', maxWaitMs: 1, reembedEveryMs: 400, lateFrameMs: 400 });
    for (const [id, at] of [['g0', 0], ['g1', 500]] as const) {
      const m = await frameMsg('cam2', id, undefined, TS + at);
      runner.current.push(id);
      expect((await stage.process([m], ctx)).outputs[0]!.messages).toHaveLength(1);
    }
  });
});

describe('EmbedderStage: a camera behind', () => {
  /** One face per image; an image of width `holdWidth` is held until released. */
  class HoldingRunner implements FaceRunner {
    readonly embedderInfo = { name: 'fake-model', dim: 4 };
    seen: number[] = [];
    release!: () => void;
    private readonly gate = new Promise<void>((r) => (this.release = r));
    constructor(private readonly holdWidth: number) {}
    async run(images: RgbImage[]): Promise<EngineFace[][]> {
      this.seen.push(...images.map((i) => i.width));
      if (images.some((i) => i.width === this.holdWidth)) await this.gate;
      const landmarks = Array.from({ length: 68 }, (_, k) => ({ x: 20 + (k % 10) * 2, y: 20 + Math.floor(k / 10) * 2 }));
      return images.map(() => [{ box: { x: 10, y: 10, width: 40, height: 40 }, score: 0.9, keypoints: [], landmarks, embedding: Float32Array.from([1, 0, 0, 0]) }]);
    }
  }
  const jpegOf = (width: number): Promise<Buffer> => encodeJpeg({ data: new Uint8Array(width * 48 * 3).fill(100), width, height: 48 });

  async function scenario(lateMs: number): Promise<{ runner: HoldingRunner; reachedWhileHeld: boolean }> {
    const runner = new HoldingRunner(65);
    const stage = new EmbedderStage({ runner, facesTopic: 'faces', maxWaitMs: 1, maxInFlight: 2, fullDetectionEveryMs: 1000, lateFrameMs: 400 });
    const cam = `cam-${lateMs}`;
    // a full detection, then a region frame whose camera's faces are stale (600 ms) and that the engine holds
    await stage.process([await frameMsg(cam, 'f0', await jpegOf(64), TS)], ctx);
    const held = stage.process([await frameMsg(cam, 'f1', await jpegOf(65), TS + 600)], ctx);
    while (!runner.seen.includes(65)) await new Promise((r) => setTimeout(r, 5));
    // the next region frame, published `lateMs` ago
    const next = stage.process([{ ...(await frameMsg(cam, 'f2', await jpegOf(66), TS + 800)), timestamp: Date.now() - lateMs }], ctx);
    await new Promise((r) => setTimeout(r, 300));
    const reachedWhileHeld = runner.seen.includes(66);
    runner.release();
    await Promise.all([held, next]);
    return { runner, reachedWhileHeld };
  }

  it('a_late_region_frame_does_not_wait_for_the_cameras_previous_frame', async () => {
    expect((await scenario(1000)).reachedWhileHeld).toBe(true);
  });

  it('an_on_time_region_frame_with_stale_faces_waits_for_the_cameras_previous_frame', async () => {
    const { runner, reachedWhileHeld } = await scenario(0);
    expect(reachedWhileHeld).toBe(false);
    expect(runner.seen).toEqual([64, 65, 66]);
  });
});
