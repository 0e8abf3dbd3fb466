/**
 * The two-pass video redaction over synthetic frames and a scripted analyser (no model): which frames a track
 * is hidden in (backwards and forwards hold, shot cuts), whole-track decisions, and the sink's life cycle.
 */
import { describe, expect, it } from 'vitest';
import { FaceflowError } from '@faceflow/shared';
import type { Box, RgbImage } from '../image/geometry.js';
import { rasterizePolygon } from '../segment/mask.js';
import { redactFaces, redactVideo, type FrameSink, type RedactionAnalyser, type RedactionFace } from './video.js';

const W = 64, H = 48;
const A: Box = { x: 6, y: 8, width: 18, height: 18 };
const B: Box = { x: 38, y: 8, width: 18, height: 18 };
const ANN = Float32Array.from([1, 0, 0, 0]);
const STRANGER = Float32Array.from([0, 1, 0, 0]);

/** frame i: grey 100 for frames 0-5, 220 from frame 6 on (a shot cut); its index in the first pixel */
function frame(i: number): RgbImage {
  const data = new Uint8Array(W * H * 3).fill(i < 6 ? 100 : 220);
  data[0] = i;
  return { data, width: W, height: H };
}

/** A is seen in frames 2-4, B in every frame (across the cut) */
function facesOf(i: number): Array<{ box: Box; embedding: Float32Array }> {
  return [...(i >= 2 && i <= 4 ? [{ box: A, embedding: ANN }] : []), { box: B, embedding: STRANGER }];
}

function analyser(calls: string[] = []): RedactionAnalyser {
  const square = (b: Box) => rasterizePolygon([{ x: b.x, y: b.y }, { x: b.x + b.width, y: b.y }, { x: b.x + b.width, y: b.y + b.height }, { x: b.x, y: b.y + b.height }], W, H);
  return {
    async analyse(image) {
      calls.push(`analyse ${image.data[0]}`);
      return facesOf(image.data[0]!).map((f): RedactionFace => ({ box: f.box, mask: square(f.box), identity: null, hide: true, embedding: f.embedding }));
    },
    async detect() {
      return [];
    },
  };
}

/** Re-iterable frames 0..n-1, as a decoder over a file gives them. */
function video(n: number): AsyncIterable<RgbImage> {
  return {
    async *[Symbol.asyncIterator]() {
      for (let i = 0; i < n; i++) yield frame(i);
    },
  };
}

function sink(calls: string[] = []): FrameSink & { frames: RgbImage[] } {
  const frames: RgbImage[] = [];
  return {
    frames,
    async write(f) {
      frames.push(f);
    },
    async close() {
      calls.push('close');
    },
    abort() {
      calls.push('abort');
    },
  };
}

const centre = (b: Box): number => ((b.y + b.height / 2) * W + b.x + b.width / 2) * 3 + 1;
/** whether the output frame differs from its input at the centre of `b` */
const hiddenAt = (out: RgbImage, i: number, b: Box): boolean => out.data[centre(b)] !== frame(i).data[centre(b)];

describe('redactVideo', () => {
  it('hides every track, also in the frames before its first detection and after its last, and ends tracks at a cut', async () => {
    const calls: string[] = [];
    const out = sink(calls);
    const r = await redactVideo(video(10), analyser(calls), () => {
      calls.push('open');
      return out;
    }, { style: 'fill' });
    // A: 3 faces, held back into frames 0-1 and over frame 5; the cut at frame 6 ends its track
    expect(r).toEqual({ frames: 10, faces: 13, hidden: 13, held: 3, shotCuts: 1, kept: {}, extraPasses: 0, residual: 0 });
    expect(out.frames).toHaveLength(10);
    expect(out.frames.map((f, i) => hiddenAt(f, i, A))).toEqual([true, true, true, true, true, true, false, false, false, false]);
    expect(out.frames.every((f, i) => hiddenAt(f, i, B))).toBe(true);
    // the sink opens once every frame was analysed
    expect(calls.indexOf('open')).toBe(10);
    expect(calls.at(-1)).toBe('close');
  });

  it('keeps a track whose mean embedding names an enrolled person, in all its frames and no other', async () => {
    const decideTrack = (mean: Float32Array): string | null => (mean[0]! > 0.9 ? 'ann' : null);
    const out = sink();
    const r = await redactVideo(video(10), { ...analyser(), decideTrack }, () => out, { style: 'fill' });
    expect(r).toMatchObject({ faces: 13, hidden: 10, held: 0, kept: { ann: 3 } });
    expect(out.frames.map((f, i) => hiddenAt(f, i, A))).toEqual(Array(10).fill(false));
    expect(out.frames.every((f, i) => hiddenAt(f, i, B))).toBe(true);
  });

  it('maxFrames stops both passes there', async () => {
    const out = sink();
    const r = await redactVideo(video(10), analyser(), () => out, { maxFrames: 4 });
    expect(r.frames).toBe(4);
    expect(out.frames).toHaveLength(4);
  });

  it('a video with no frames is INVALID_ARGUMENT naming it, and opens no output', async () => {
    const calls: string[] = [];
    const e = await redactVideo(video(0), analyser(), () => sink(calls), { label: 'empty.mp4' }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(FaceflowError);
    expect([(e as FaceflowError).code, (e as FaceflowError).message]).toEqual(['INVALID_ARGUMENT', 'empty.mp4 has no video frames']);
    expect(calls).toEqual([]);
  });

  it('frames that cannot be read twice are refused before any work', async () => {
    async function* once(): AsyncGenerator<RgbImage> {
      yield frame(0);
    }
    await expect(redactVideo(once(), analyser(), () => sink())).rejects.toThrow(/reads the frames twice/);
  });

  it('an output that fails is aborted and the failure is the error', async () => {
    const calls: string[] = [];
    const failing: FrameSink = {
      write: async () => {
        throw new FaceflowError('INVALID_ARGUMENT', 'disk full');
      },
      close: async () => void calls.push('close'),
      abort: () => void calls.push('abort'),
    };
    await expect(redactVideo(video(3), analyser(), () => failing)).rejects.toThrow(/disk full/);
    expect(calls).toEqual(['abort']);
  });
});

describe('redactFaces', () => {
  it('hides the faces decided hidden, leaves the kept ones, and verifies with the detector', async () => {
    const square = (b: Box) => rasterizePolygon([{ x: b.x, y: b.y }, { x: b.x + b.width, y: b.y }, { x: b.x + b.width, y: b.y + b.height }, { x: b.x, y: b.y + b.height }], W, H);
    let detections = 0;
    const a: RedactionAnalyser = {
      analyse: async () => [
        { box: A, mask: square(A), identity: 'ann', hide: false },
        { box: B, mask: square(B), identity: null, hide: true },
      ],
      // the first verification still finds B, the second nothing
      detect: async () => (detections++ === 0 ? [{ box: B }] : []),
    };
    const r = await redactFaces(frame(3), a, { style: 'fill' });
    expect([r.hidden, r.kept.map((f) => f.identity), r.extraPasses, r.residual]).toEqual([1, ['ann'], 1, 0]);
    expect([hiddenAt(r.image, 3, A), hiddenAt(r.image, 3, B)]).toEqual([false, true]);
  });
});
