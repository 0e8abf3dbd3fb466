/**
 * Issue 4: face masks, quality and redaction, on the photos an npm package ships (@vladmandic/face-api's
 * demo group photos) and on images the tests make. No data from ../shared is needed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import sharp from 'sharp';
import { FaceEngine, type Face, defaultModelPaths } from '../recognize/engine.js';
import { decodeImage } from '../image/image.js';
import { tf, initRuntime } from '../runtime/tf.js';
import { resolveModel } from '../registry/index.js';
import { FaceMesh, MESH_INPUT, boxShrink, meshRoiFromLandmarks, roiAffine } from '../models/facemesh.js';
import { FaceSegmenter, GROW_MAX_FACE_PX, faceOvalPolygon, landmarkPolygon, segmentFromLandmarks } from './index.js';
import {
  dilateMask,
  fromDenseMask,
  maskArea,
  maskAt,
  maskToPng,
  maskToRle,
  rasterizePolygon,
  rleCountsFromString,
  rleCountsToString,
  rleToMask,
  toDenseMask,
  type FaceMask,
} from './mask.js';
import { faceQuality, assertQuality, DEFAULT_QUALITY_FLOOR, poseFromLandmarks } from '../recognize/quality.js';
import { RedactionTracker, decideRedaction, faceRedactionMask, redactImage, redactVerified } from '../redact/redact.js';
import { Gallery } from '../match/gallery.js';
import { iou, type Point, type RgbImage } from '../image/geometry.js';
import { GROUP_PHOTOS } from '../testkit/fixtures.testkit.js';

// ------------------------------------------------------------------------------------- pure masks

describe('masks', () => {
  it('rasterises a polygon by pixel centres', () => {
    // the square [1.5, 5.5] x [2.5, 4.5] holds centres x = 2..5, y = 3..4
    const m = rasterizePolygon([{ x: 1.5, y: 2.5 }, { x: 5.5, y: 2.5 }, { x: 5.5, y: 4.5 }, { x: 1.5, y: 4.5 }], 10, 8);
    expect(maskArea(m)).toBe(8);
    expect([m.x, m.y, m.w, m.h]).toEqual([2, 3, 4, 2]);
    expect(maskAt(m, 2, 3)).toBe(1);
    expect(maskAt(m, 1, 3)).toBe(0);
    // a polygon partly outside the frame is clipped, an empty one gives an empty mask
    expect(maskArea(rasterizePolygon([{ x: -5, y: -5 }, { x: 2.5, y: -5 }, { x: 2.5, y: 1.5 }, { x: -5, y: 1.5 }], 10, 8))).toBe(6);
    expect(maskArea(rasterizePolygon([{ x: 1, y: 1 }, { x: 2, y: 2 }], 10, 8))).toBe(0);
  });

  it('a circle polygon has about the circle\'s area', () => {
    const pts: Point[] = Array.from({ length: 360 }, (_, k) => ({ x: 50 + 20 * Math.cos((k * Math.PI) / 180), y: 40 + 20 * Math.sin((k * Math.PI) / 180) }));
    expect(Math.abs(maskArea(rasterizePolygon(pts, 100, 80)) - Math.PI * 400) / (Math.PI * 400)).toBeLessThan(0.02);
  });

  it('COCO RLE: column-major, zeros first, and round trips (counts and compressed string)', () => {
    // 3x2 frame (w=3, h=2): ones at (x=1,y=0) and (x=1,y=1) and (x=2,y=1)
    const dense = Uint8Array.from([0, 1, 0, 0, 1, 1]);
    const m = fromDenseMask(dense, 3, 2);
    const rle = maskToRle(m);
    // column-major: x=0: 0 0 | x=1: 1 1 | x=2: 0 1
    expect(rle).toEqual({ size: [2, 3], counts: [2, 2, 1, 1] });
    expect(toDenseMask(rleToMask(rle))).toEqual(dense);
    const s = rleCountsToString(rle.counts);
    expect(rleCountsFromString(s)).toEqual(rle.counts);
    // a mask that starts with ones has a zero-length first run
    expect(maskToRle(fromDenseMask(Uint8Array.from([1, 0]), 1, 2)).counts).toEqual([0, 1, 1]);
    // larger random masks round trip through the string form
    let seed = 7;
    const rnd = (): number => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
    for (let t = 0; t < 5; t++) {
      const d = Uint8Array.from({ length: 37 * 23 }, () => (rnd() > 0.7 ? 1 : 0));
      const r = maskToRle(fromDenseMask(d, 37, 23));
      expect(toDenseMask(rleToMask({ size: r.size, counts: rleCountsFromString(rleCountsToString(r.counts)) }))).toEqual(d);
    }
  });

  it('compressed RLE strings match pycocotools', () => {
    // strings printed by pycocotools 2.0 mask.encode: [[0,1,0],[0,1,1]] -> '221O'; 100x1 zeros -> 'T3';
    // a 10x10 mask with rows 2..6 x columns 3..7 set -> 'P1550000000b0'
    expect(rleCountsToString([2, 2, 1, 1])).toBe('221O');
    expect(rleCountsFromString('221O')).toEqual([2, 2, 1, 1]);
    expect(rleCountsToString([100])).toBe('T3');
    const sq = new Uint8Array(100);
    for (let y = 2; y < 7; y++) for (let x = 3; x < 8; x++) sq[y * 10 + x] = 1;
    expect(rleCountsToString(maskToRle(fromDenseMask(sq, 10, 10)).counts)).toBe('P1550000000b0');
  });

  it('dilates by a Euclidean radius', () => {
    const dot = fromDenseMask(Uint8Array.from({ length: 21 * 21 }, (_, k) => (k === 10 * 21 + 10 ? 1 : 0)), 21, 21);
    // lattice points within distance 2 of a point: 13
    expect(maskArea(dilateMask(dot, 2))).toBe(13);
    expect(maskArea(dilateMask(dot, 0))).toBe(1);
  });

  it('writes a frame-sized PNG', async () => {
    const m = rasterizePolygon([{ x: 2, y: 2 }, { x: 8, y: 2 }, { x: 8, y: 6 }, { x: 2, y: 6 }], 12, 9);
    const png = await maskToPng(m);
    const meta = await sharp(png).metadata();
    expect([meta.width, meta.height, meta.channels]).toEqual([12, 9, 1]);
    const { data } = await sharp(png).extractChannel(0).raw().toBuffer({ resolveWithObject: true });
    expect(data.filter((v) => v === 255).length).toBe(maskArea(m));
  });
});

// ------------------------------------------------------------------------------------ tracker, decide

describe('redaction decisions and tracking', () => {
  const frame = { width: 100, height: 100 };
  const square = (x: number): FaceMask => rasterizePolygon([{ x, y: 10 }, { x: x + 20, y: 10 }, { x: x + 20, y: 30 }, { x, y: 30 }], frame.width, frame.height);
  const box = (x: number) => ({ x, y: 10, width: 20, height: 20 });

  it('holds a missed face hidden for `hold` frames, then lets go', () => {
    const t = new RedactionTracker({ hold: 2 });
    expect(t.update([{ box: box(10), mask: square(10), identity: null }]).hide).toHaveLength(1);
    const miss1 = t.update([]);
    expect(miss1.held).toBe(1);
    // the held mask is the last one, widened
    expect(maskArea(miss1.hide[0]!)).toBeGreaterThan(maskArea(square(10)));
    expect(t.update([]).held).toBe(1);
    expect(t.update([]).held).toBe(0);
  });

  it('by default shows a track only when a majority of its frames name the person', () => {
    const t = new RedactionTracker();
    const step = (id: string | null) => t.update([{ box: box(50), mask: square(50), identity: id }]).faces[0]!.hide;
    expect([step('bob'), step(null), step('bob'), step('bob'), step(null), step(null)]).toEqual([true, true, false, false, false, true]);
  });

  it('decides identity per track: one frame naming a stranger does not unveil them', () => {
    const t = new RedactionTracker();
    const r1 = t.update([{ box: box(10), mask: square(10), identity: null }]);
    const r2 = t.update([{ box: box(12), mask: square(12), identity: 'alice' }]);
    expect(r1.faces[0]!.hide).toBe(true);
    expect(r2.faces[0]!.track).toBe(r1.faces[0]!.track);
    expect(r2.faces[0]!.hide).toBe(true);
    // an enrolled person is shown once named in 2 frames and in more than 30% of the track's frames
    const u = new RedactionTracker({ minShare: 0.3 });
    expect(u.update([{ box: box(50), mask: square(50), identity: 'bob' }]).faces[0]!.hide).toBe(true);
    expect(u.update([{ box: box(51), mask: square(51), identity: null }]).faces[0]!.hide).toBe(true);
    expect(u.update([{ box: box(52), mask: square(52), identity: 'bob' }]).hide).toHaveLength(0);
    expect(u.update([{ box: box(52), mask: square(52), identity: null }]).faces[0]!.identity).toBe('bob');
    for (let k = 0; k < 3; k++) u.update([{ box: box(52), mask: square(52), identity: null }]);
    // 2 of 8 frames is under 30%: hidden again
    expect(u.update([{ box: box(52), mask: square(52), identity: null }]).faces[0]!.hide).toBe(true);
  });

  it('decides a whole track from all its frames: a stranger named in his first frames stays hidden', () => {
    const t = new RedactionTracker();
    const stranger: number[] = [];
    const enrolled: number[] = [];
    // a stranger the matcher names as bob in his first two frames, then not in the next six; alongside,
    // alice, named in 5 of her 8 frames but not in her first
    const names = [null, 'alice', 'alice', null, 'alice', 'alice', null, 'alice'];
    for (let k = 0; k < 8; k++) {
      const seen = t.observe([
        { box: box(10), mask: square(10), identity: k < 2 ? 'bob' : null },
        { box: box(60), mask: square(60), identity: names[k]! },
      ]);
      stranger.push(seen.faces[0]!.track);
      enrolled.push(seen.faces[1]!.track);
      expect(seen.faces.map((f) => f.fresh)).toEqual([k === 0, k === 0]);
    }
    expect(new Set(stranger).size).toBe(1);
    expect(t.identityOf(stranger[0]!)).toBeNull();
    expect(t.identityOf(enrolled[0]!)).toBe('alice');
    // the online decision would have shown the stranger in frame 2 (named in 2 of 2 frames)
    const online = new RedactionTracker();
    online.update([{ box: box(10), mask: square(10), identity: 'bob' }]);
    expect(online.update([{ box: box(10), mask: square(10), identity: 'bob' }]).faces[0]!.hide).toBe(false);
  });

  it('with `decide`, a track is named from the mean of its embeddings; a shot cut ends every track', () => {
    const unit = (v: number[]) => { const n = Math.hypot(...v); return Float32Array.from(v.map((x) => x / n)); };
    // alice is [1, 0]; single frames scatter around her (each ~0.42 away), their mean is close
    const decide = (mean: Float32Array) => (Math.hypot(mean[0]! - 1, mean[1]!) < 0.3 ? 'alice' : null);
    const t = new RedactionTracker({ decide });
    let id = 0;
    for (const y of [0.45, -0.45, 0.45, -0.45]) {
      const seen = t.observe([{ box: box(10), mask: square(10), identity: null, embedding: unit([1, y]) }]);
      id = seen.faces[0]!.track;
      expect(Math.hypot(unit([1, y])[0]! - 1, unit([1, y])[1]!)).toBeGreaterThan(0.3);
    }
    expect(t.identityOf(id)).toBe('alice');
    // the same place after a cut: a new track, decided on its own (someone else: hidden), nothing held over
    const after = t.observe([{ box: box(10), mask: square(10), identity: null, embedding: unit([0, 1]) }], { cut: true });
    expect(after.faces[0]!.track).not.toBe(id);
    expect(after.faces[0]!.fresh).toBe(true);
    expect(t.identityOf(after.faces[0]!.track)).toBeNull();
    expect(t.identityOf(id)).toBe('alice');
    const gone = t.observe([], { cut: true });
    expect(gone.held).toHaveLength(0);
    // without embeddings a decide-tracker has nothing to name a track with: hidden
    const u = new RedactionTracker({ decide });
    expect(u.identityOf(u.observe([{ box: box(10), mask: square(10), identity: 'alice' }]).faces[0]!.track)).toBeNull();
  });

  it('observe reports missed tracks as held, widened, for `hold` frames', () => {
    const t = new RedactionTracker({ hold: 1 });
    const first = t.observe([{ box: box(10), mask: square(10), identity: null }]);
    const miss = t.observe([]);
    expect(miss.held.map((h) => h.track)).toEqual([first.faces[0]!.track]);
    expect(maskArea(miss.held[0]!.mask)).toBeGreaterThan(maskArea(square(10)));
    expect(t.observe([]).held).toHaveLength(0);
  });

  it('verification hides every detection that is not a kept face, and leaves the kept ones', async () => {
    const img: RgbImage = { width: 100, height: 100, data: Uint8Array.from({ length: 100 * 100 * 3 }, (_, k) => (k * 37) % 256) };
    const stray = { x: 60, y: 60, width: 20, height: 20 };
    const kept = { x: 60, y: 10, width: 20, height: 20 };
    // a detector that finds the kept face always, and a stray face until its pixels change
    const detect = async (im: RgbImage) => {
      const o = (70 * 100 + 70) * 3;
      const strayThere = im.data[o] === img.data[o] && im.data[o + 1] === img.data[o + 1];
      return strayThere ? [{ box: kept }, { box: stray }] : [{ box: kept }];
    };
    const r = await redactVerified(img, [square(10)], detect, { style: 'fill' }, { kept: [kept] });
    expect(r.passes).toBe(1);
    expect(r.residual).toBe(0);
    const px = (x: number, y: number) => Array.from(r.image.data.subarray((y * 100 + x) * 3, (y * 100 + x) * 3 + 3));
    expect(px(70, 70)).toEqual([128, 128, 128]);
    // the kept face is untouched
    expect(px(70, 20)).toEqual(Array.from(img.data.subarray((20 * 100 + 70) * 3, (20 * 100 + 70) * 3 + 3)));
    // a detector that never lets go: the passes run out and the rest is reported
    const stubborn = await redactVerified(img, [square(10)], async () => [{ box: stray }], { style: 'fill' }, { maxPasses: 1 });
    expect([stubborn.passes, stubborn.residual]).toEqual([1, 1]);
  });

  it('keeps enrolled faces and hides the rest (and everything with --all)', () => {
    const g = new Gallery('m', 2);
    g.add('alice', [Float32Array.from([1, 0])]);
    g.add('bob', [Float32Array.from([0, 1])]);
    const faces = [{ embedding: Float32Array.from([1, 0]) }, { embedding: Float32Array.from([Math.SQRT1_2, Math.SQRT1_2]) }, {}];
    const d = decideRedaction(faces, { keep: 'enrolled', gallery: g, identify: { threshold: 0.5 } });
    expect(d.map((x) => x.hide)).toEqual([false, true, true]);
    expect(d[0]!.identity).toBe('alice');
    expect(decideRedaction(faces).every((x) => x.hide)).toBe(true);
  });

  it('redacts only under the mask, in every style', () => {
    const img: RgbImage = { width: 100, height: 100, data: Uint8Array.from({ length: 100 * 100 * 3 }, (_, k) => (k * 37) % 256) };
    const m = square(40);
    for (const style of ['blur', 'pixelate', 'fill'] as const) {
      const out = redactImage(img, [m], { style, dilate: 0 });
      const dilated = dilateMask(m, 2);
      let changedOutside = 0;
      let changedInside = 0;
      for (let y = 0; y < 100; y++) {
        for (let x = 0; x < 100; x++) {
          const o = (y * 100 + x) * 3;
          const changed = out.data[o] !== img.data[o] || out.data[o + 1] !== img.data[o + 1];
          if (maskAt(dilated, x, y)) changedInside += changed ? 1 : 0;
          else changedOutside += changed ? 1 : 0;
        }
      }
      expect(changedOutside, style).toBe(0);
      expect(changedInside, style).toBeGreaterThan(maskArea(m) * 0.8);
    }
    expect(() => redactImage(img, [rasterizePolygon([{ x: 1, y: 1 }, { x: 5, y: 1 }, { x: 5, y: 5 }], 50, 50)])).toThrow(/frame/);
  });
});

// --------------------------------------------------------------------------------------- models

const noise = (n: number): Uint8Array => Uint8Array.from({ length: n }, (_, i) => (i * 2654435761) % 251);

describe('FaceMesh', () => {
  it('leaks no tensors, batches consistently, and frees its weights on dispose', async () => {
    await initRuntime({ backend: 'wasm' });
    const start = tf.memory().numTensors;
    const mesh = await FaceMesh.load({ modelPath: (await resolveModel('facemesh')).main, batchSize: 2 });
    const img: RgbImage = { width: 300, height: 240, data: noise(300 * 240 * 3) };
    const roi = { cx: 150, cy: 120, size: 200, angle: 0.2 };
    const [single] = await mesh.run([{ image: img, roi }]);
    const before = tf.memory().numTensors;
    const batch = await mesh.run([{ image: img, roi: { ...roi, angle: 0 } }, { image: img, roi }, { image: img, roi: { ...roi, size: 150 } }]);
    expect(tf.memory().numTensors).toBe(before);
    expect(batch).toHaveLength(3);
    expect(batch[1]!.points).toHaveLength(468);
    for (let i = 0; i < 468; i += 47) expect(batch[1]!.points[i]!.x).toBeCloseTo(single!.points[i]!.x, 2);
    expect(single!.faceScore).toBeGreaterThanOrEqual(0);
    expect(single!.faceScore).toBeLessThanOrEqual(1);
    mesh.dispose();
    expect(tf.memory().numTensors).toBe(start);
    await expect(mesh.run([{ image: img, roi }])).rejects.toThrow(/after dispose/);
    expect(MESH_INPUT).toBe(192);
  });

  it('boxShrink averages every f x f block, edge blocks over the pixels they have, and maps the crop onto block centres', () => {
    // R = x, G = y, B = noise: a block's mean R and G are its centre, so sampling the shrunk copy at the
    // crop's affine must give back the image coordinates the crop pixel stands on
    const W = 211, H = 197;
    const data = noise(W * H * 3);
    for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) { data[(y * W + x) * 3] = x; data[(y * W + x) * 3 + 1] = y; }
    const image: RgbImage = { width: W, height: H, data };
    for (const f of [2, 3, 4]) {
      const m = roiAffine({ cx: 105, cy: 99, size: 192 * f * 0.55, angle: 0.3 });
      const shrunk = boxShrink(image, m, f)!;
      const s = shrunk.image;
      // the region read is the whole image here (the crop reaches past every edge): block (i, j) is the mean
      // of image pixels [f i, f i + f) x [f j, f j + f), cut at the edge
      expect(s.width).toBe(Math.ceil(W / f));
      expect(s.height).toBe(Math.ceil(H / f));
      for (let j = 0; j < s.height; j++) {
        for (let i = 0; i < s.width; i++) {
          let sum = 0, n = 0;
          for (let y = f * j; y < Math.min(H, f * j + f); y++) for (let x = f * i; x < Math.min(W, f * i + f); x++) { sum += data[(y * W + x) * 3 + 2]!; n++; }
          expect(Math.abs(s.data[(j * s.width + i) * 3 + 2]! - sum / n)).toBeLessThanOrEqual(0.5);
        }
      }
      for (const [u, v] of [[96, 96], [70, 110], [120, 80]] as const) {
        const x = m[0] * u + m[1] * v + m[2], y = m[3] * u + m[4] * v + m[5];
        const xs = shrunk.m[0] * u + shrunk.m[1] * v + shrunk.m[2], ys = shrunk.m[3] * u + shrunk.m[4] * v + shrunk.m[5];
        const i0 = Math.floor(xs), j0 = Math.floor(ys), fx = xs - i0, fy = ys - j0;
        const at = (i: number, j: number, c: number): number => s.data[(j * s.width + i) * 3 + c]!;
        const lerp = (c: number): number => (at(i0, j0, c) * (1 - fx) + at(i0 + 1, j0, c) * fx) * (1 - fy) + (at(i0, j0 + 1, c) * (1 - fx) + at(i0 + 1, j0 + 1, c) * fx) * fy;
        expect(Math.min(x, y, W - x, H - y)).toBeGreaterThan(2 * f);
        expect(Math.abs(lerp(0) - x)).toBeLessThan(0.6);
        expect(Math.abs(lerp(1) - y)).toBeLessThan(0.6);
      }
    }
    // a crop wholly outside the image reads nothing
    expect(boxShrink(image, roiAffine({ cx: -2000, cy: 50, size: 600, angle: 0 }), 3)).toBeUndefined();
  });

  it('a model that is not a face mesh is refused', async () => {
    await initRuntime({ backend: 'wasm' });
    await expect(FaceMesh.load({ modelPath: (await defaultModelPaths()).blazeface })).rejects.toMatchObject({ code: 'MODEL_LOAD' });
  });
});

// ------------------------------------------------------------------------------- on real photos

let engine: FaceEngine;
let segmenter: FaceSegmenter;
const photos: Array<{ file: string; image: RgbImage; faces: Face[] }> = [];

beforeAll(async () => {
  engine = await FaceEngine.load({ backend: 'wasm' });
  segmenter = await FaceSegmenter.load({ method: 'mesh', meshModelPath: (await resolveModel('facemesh')).main });
  for (const p of GROUP_PHOTOS) {
    const image = await decodeImage(p.file);
    const [faces] = await engine.run([image], { embed: false });
    photos.push({ file: p.file, image, faces: faces! });
  }
});
afterAll(() => {
  segmenter?.dispose();
  engine?.dispose();
});

function convexHull(points: Point[]): Point[] {
  const p = [...points].sort((a, b) => a.x - b.x || a.y - b.y);
  const cross = (o: Point, a: Point, b: Point): number => (a.x - o.x) * (b.y - o.y) - (a.y - o.y) * (b.x - o.x);
  const lower: Point[] = [];
  for (const q of p) {
    while (lower.length >= 2 && cross(lower[lower.length - 2]!, lower[lower.length - 1]!, q) <= 0) lower.pop();
    lower.push(q);
  }
  const upper: Point[] = [];
  for (const q of [...p].reverse()) {
    while (upper.length >= 2 && cross(upper[upper.length - 2]!, upper[upper.length - 1]!, q) <= 0) upper.pop();
    upper.push(q);
  }
  return [...lower.slice(0, -1), ...upper.slice(0, -1)];
}

function overlap(a: FaceMask, b: FaceMask): number {
  let n = 0;
  for (let j = 0; j < a.h; j++) for (let i = 0; i < a.w; i++) if (a.data[j * a.w + i] && maskAt(b, a.x + i, a.y + j)) n++;
  return n;
}

describe('segmentation on the demo photos', () => {
  it('a_large_face_grows_its_mask_on_a_scaled_copy: the same mask as at the original size, scaled up', async () => {
    const { image, faces } = photos[0]!;
    const face = faces.reduce((a, b) => (b.box.width > a.box.width ? b : a));
    const small = segmentFromLandmarks(image, face, { grow: true });
    // the same photo 3x: the face is well over GROW_MAX_FACE_PX, so growing runs on a scaled copy
    const k = 3;
    const big = await decodeImage(await sharp(image.data, { raw: { width: image.width, height: image.height, channels: 3 } }).resize(image.width * k, image.height * k).png().toBuffer());
    const bigFace = { ...face, landmarks: face.landmarks.map((p) => ({ x: p.x * k + (k - 1) / 2, y: p.y * k + (k - 1) / 2 })) };
    expect(Math.max(face.box.width, face.box.height) * k).toBeGreaterThan(GROW_MAX_FACE_PX * 1.5);
    const large = segmentFromLandmarks(big, bigFace, { grow: true });
    expect(large.mask.width).toBe(big.width);
    // compare at the large size: the small mask, each pixel k x k
    let inter = 0;
    let union = 0;
    for (let y = large.mask.y - 10; y < large.mask.y + large.mask.h + 10; y++) {
      for (let x = large.mask.x - 10; x < large.mask.x + large.mask.w + 10; x++) {
        const a = maskAt(large.mask, x, y);
        const b = maskAt(small.mask, Math.floor(x / k), Math.floor(y / k));
        if (a && b) inter++;
        if (a || b) union++;
      }
    }
    expect(inter / union).toBeGreaterThan(0.85);
  });

  it('a_large_face_meshes_as_its_small_copy: the box-shrunk crop of a 3x photo gives the same mesh, 3x', async () => {
    // the largest demo face, shrunk so its crop is sampled plainly (~200 px for 192), and that copy 3x
    const { image: photo, faces } = photos[0]!;
    const face = faces.reduce((a, b) => (b.box.width > a.box.width ? b : a));
    const r = 200 / meshRoiFromLandmarks(face.landmarks).size;
    const resize = async (w: number, h: number, from: RgbImage): Promise<RgbImage> =>
      decodeImage(await sharp(from.data, { raw: { width: from.width, height: from.height, channels: 3 } }).resize(w, h, { kernel: 'lanczos3', fit: 'fill' }).png().toBuffer());
    const image = await resize(Math.round(photo.width * r), Math.round(photo.height * r), photo);
    const sx = image.width / photo.width, sy = image.height / photo.height;
    const roi = meshRoiFromLandmarks(face.landmarks.map((p) => ({ x: (p.x + 0.5) * sx - 0.5, y: (p.y + 0.5) * sy - 0.5 })));
    const k = 3;
    const big = await resize(image.width * k, image.height * k, image);
    const bigRoi = { ...roi, cx: roi.cx * k + (k - 1) / 2, cy: roi.cy * k + (k - 1) / 2, size: roi.size * k };
    // the small crop is sampled plainly; the large one spans > 1.5 image pixels per crop pixel, so it is shrunk first
    expect(roi.size / MESH_INPUT).toBeLessThan(1.5);
    expect(bigRoi.size / MESH_INPUT).toBeGreaterThan(1.5);
    const mesh = await FaceMesh.load({ modelPath: (await resolveModel('facemesh')).main });
    try {
      const [a, b] = await mesh.run([{ image, roi }, { image: big, roi: bigRoi }]);
      let d = 0;
      for (let i = 0; i < 468; i++) d += Math.hypot((b!.points[i]!.x - (k - 1) / 2) / k - a!.points[i]!.x, (b!.points[i]!.y - (k - 1) / 2) / k - a!.points[i]!.y);
      // mean point distance under 0.5% of the crop's side (1 px of its 200; measured 0.3 px)
      expect(d / 468).toBeLessThan(0.005 * roi.size);
      expect(b!.faceScore).toBeGreaterThan(0.5);
    } finally {
      mesh.dispose();
    }
  });

  it('covers each face (the inner landmarks\' hull) and stays on it (inside the enlarged box)', async () => {
    for (const variant of [{ grow: false }, { grow: true }, { grow: { classifier: 'learned' as const } }]) {
      for (const { file, image, faces } of photos) {
        const [segs] = await segmenter.run([image], [faces], variant);
        expect(segs).toHaveLength(faces.length);
        // detections the mesh says are not faces (sample4 has a 51 px false positive, mesh score 0.00) are
        // not what this test is about
        expect(segs!.filter((x) => (x.meshScore ?? 0) >= 0.5).length, file).toBeGreaterThan(0);
        segs!.forEach((s, k) => {
          if ((s.meshScore ?? 0) < 0.5) return;
          const f = faces[k]!;
          const what = `${file} face ${k} grow=${JSON.stringify(variant.grow)}`;
          // the inner features (eyes, nose, mouth: landmarks 27..67) are under the mask. Not 100%: the 68
          // landmarks themselves are off by a few pixels on sample1's painted face (0.94 covered), and growing
          // trims the outline's edge of what looks like hair, which the black and white paint does (0.92)
          const hull = rasterizePolygon(convexHull(f.landmarks.slice(27)), image.width, image.height);
          expect(overlap(hull, s.mask) / maskArea(hull), what).toBeGreaterThan(0.9);
          // and the mask is not the background: the outline stays within the detector's box enlarged 1.5x; grown,
          // within 2x (the neck of a tilted head goes sideways)
          const b = f.box;
          const e = variant.grow ? 0.5 : 0.25;
          const region = rasterizePolygon(
            [{ x: b.x - e * b.width, y: b.y - e * b.height }, { x: b.x + (1 + e) * b.width, y: b.y - e * b.height }, { x: b.x + (1 + e) * b.width, y: b.y + 2.2 * b.height }, { x: b.x - e * b.width, y: b.y + 2.2 * b.height }],
            image.width,
            image.height,
          );
          expect(overlap(s.mask, region) / maskArea(s.mask), what).toBeGreaterThan(0.98);
          // a face-sized mask: between 40% and 250% of the box's area
          const ratio = maskArea(s.mask) / (b.width * b.height);
          expect(ratio, what).toBeGreaterThan(0.4);
          expect(ratio, what).toBeLessThan(2.5);
          expect(s.polygon.length).toBeGreaterThanOrEqual(20);
        });
      }
    }
  });

  it('the landmarks method (no mesh) covers the face too', () => {
    for (const { image, faces } of photos.slice(0, 2)) {
      for (const f of faces) {
        const s = segmentFromLandmarks(image, f);
        const hull = rasterizePolygon(convexHull(f.landmarks.slice(17)), image.width, image.height);
        expect(overlap(hull, s.mask) / maskArea(hull)).toBeGreaterThan(0.97);
        expect(s.polygon).toEqual(landmarkPolygon(f.landmarks));
      }
    }
  });

  it.each([['contrast'], ['learned']] as const)('a mask does not spill onto a uniform background: a face pasted on flat grey (%s)', async (classifier) => {
    const { image, faces } = photos[0]!;
    const f = faces[0]!;
    // cut the face with its surroundings and paste it on grey, so everything outside the cut is background
    const side = Math.round(f.box.width * 1.8);
    const left = Math.round(f.box.x + f.box.width / 2 - side / 2);
    const top = Math.round(f.box.y + f.box.height / 2 - side / 2);
    const crop = await sharp(image.data, { raw: { width: image.width, height: image.height, channels: 3 } }).extract({ left, top, width: side, height: side }).raw().toBuffer();
    const W = side * 3;
    const canvas = await sharp({ create: { width: W, height: W, channels: 3, background: { r: 128, g: 128, b: 128 } } })
      .composite([{ input: crop, raw: { width: side, height: side, channels: 3 }, left: side, top: side }])
      .removeAlpha()
      .raw()
      .toBuffer();
    const img: RgbImage = { width: W, height: W, data: new Uint8Array(canvas) };
    const [found] = await engine.run([img], { embed: false });
    expect(found!.length).toBeGreaterThan(0);
    const [segs] = await segmenter.run([img], [found!.slice(0, 1)], { grow: { classifier } });
    const m = segs![0]!.mask;
    // and it is the face, not a sliver: at least 60% of the detector's box
    expect(maskArea(m), classifier).toBeGreaterThan(0.6 * found![0]!.box.width * found![0]!.box.height);
    let onGrey = 0;
    for (let j = 0; j < m.h; j++) {
      for (let i = 0; i < m.w; i++) {
        if (!m.data[j * m.w + i]) continue;
        const x = m.x + i, y = m.y + j;
        if (x < side || y < side || x >= 2 * side || y >= 2 * side) onGrey++;
      }
    }
    expect(onGrey / maskArea(m)).toBeLessThan(0.02);
  });

  it('a mesh segmenter grows with the learned classifier unless told otherwise', async () => {
    const { image, faces } = photos[0]!;
    const [byDefault] = await segmenter.run([image], [faces], { grow: true });
    const [learned] = await segmenter.run([image], [faces], { grow: { classifier: 'learned' } });
    const [contrast] = await segmenter.run([image], [faces], { grow: { classifier: 'contrast' } });
    const bytes = (segs: typeof byDefault) => segs!.map((x) => Buffer.from(x.mask.data).toString('base64'));
    expect(bytes(byDefault)).toEqual(bytes(learned));
    expect(bytes(byDefault)).not.toEqual(bytes(contrast));
  });

  it('the face oval polygon follows the mesh silhouette', async () => {
    const { image, faces } = photos[1]!;
    const mesh = await FaceMesh.load({ modelPath: (await resolveModel('facemesh')).main });
    try {
      const [r] = await mesh.run([{ image, roi: meshRoiFromLandmarks(faces[0]!.landmarks) }]);
      expect(r!.faceScore).toBeGreaterThan(0.5);
      const oval = faceOvalPolygon(r!.points);
      // the chin of the oval (mesh 152) is near the 68-point chin (8)
      const chin = oval[18]!;
      const d = Math.hypot(chin.x - faces[0]!.landmarks[8]!.x, chin.y - faces[0]!.landmarks[8]!.y);
      expect(d).toBeLessThan(0.15 * faces[0]!.box.height);
    } finally {
      mesh.dispose();
    }
  });
});

describe('quality', () => {
  it('scores sharp frontal faces above the floor, and blur, tiny faces and profiles lower', async () => {
    const { image, faces } = photos[0]!;
    const f = faces[0]!;
    const q = faceQuality(image, f);
    expect(q.score).toBeGreaterThan(DEFAULT_QUALITY_FLOOR);
    for (const v of Object.values(q.components)) {
      expect(v).toBeGreaterThanOrEqual(0);
      expect(v).toBeLessThanOrEqual(1);
    }
    expect(q.score).toBeCloseTo(q.components.size * q.components.sharpness * q.components.pose * q.components.detector, 10);
    // the same photo blurred: sharpness collapses, the face is refused
    const blurred = await sharp(image.data, { raw: { width: image.width, height: image.height, channels: 3 } }).blur(8).raw().toBuffer();
    const qb = faceQuality({ ...image, data: new Uint8Array(blurred) }, f);
    expect(qb.components.sharpness).toBeLessThan(q.components.sharpness / 2);
    expect(() => assertQuality(qb, DEFAULT_QUALITY_FLOOR)).toThrow(expect.objectContaining({ code: 'LOW_QUALITY' }));
    expect(() => engine.assertEnrollable({ ...image, data: new Uint8Array(blurred) }, f)).toThrow(/under the floor/);
    expect(engine.assertEnrollable(image, f, 0).score).toBeCloseTo(q.score, 10);
    // a tiny face: landmarks scaled down 10x give a size component near 0
    const tiny = { ...f, landmarks: f.landmarks.map((p) => ({ x: p.x / 10, y: p.y / 10 })) };
    expect(faceQuality(image, tiny).components.size).toBeLessThan(0.3);
  });

  it('estimates yaw from landmarks with the right sign', () => {
    // a synthetic frontal layout: nose centred between the jaw ends; move the nose right = turn right
    const lm: Point[] = Array.from({ length: 68 }, () => ({ x: 50, y: 50 }));
    for (let i = 36; i < 42; i++) lm[i] = { x: 35, y: 40 };
    for (let i = 42; i < 48; i++) lm[i] = { x: 65, y: 40 };
    lm[0] = { x: 20, y: 45 };
    lm[16] = { x: 80, y: 45 };
    lm[8] = { x: 50, y: 100 };
    lm[30] = { x: 50, y: 60 };
    expect(Math.abs(poseFromLandmarks(lm).yaw)).toBeLessThan(1);
    lm[30] = { x: 65, y: 60 };
    expect(poseFromLandmarks(lm).yaw).toBeGreaterThan(10);
  });
});

describe('redaction on the demo photos', () => {
  // A leak is a detection centred on a face that was hidden. The detector can also fire on the hidden face's
  // surroundings (one such box on sample5, below a hidden face, IoU 0.1-0.2 with it, in blur and fill): that
  // is a false positive on hair and neck, not a face, and is counted separately.
  const centredOn = (a: { box: { x: number; y: number; width: number; height: number } }, f: Face): boolean => {
    const cx = a.box.x + a.box.width / 2, cy = a.box.y + a.box.height / 2;
    return cx > f.box.x && cx < f.box.x + f.box.width && cy > f.box.y && cy < f.box.y + f.box.height;
  };

  it.each(['blur', 'pixelate', 'fill'] as const)('%s leaves no face that the detector finds', async (style) => {
    let strays = 0;
    let passes = 0;
    const detect = async (img: RgbImage): Promise<Face[]> => (await engine.run([img], { embed: false }))[0]!;
    for (const { file, image, faces } of photos) {
      const [segs] = await segmenter.run([image], [faces], { grow: true });
      const r = await redactVerified(image, segs!.map((s, k) => faceRedactionMask(image, faces[k]!, s.mask)), detect, { style });
      expect(r.residual, file).toBe(0);
      passes += r.passes;
      const after = await detect(r.image);
      expect(after.filter((a) => faces.some((f) => centredOn(a, f))), `${file} ${style}`).toHaveLength(0);
      strays += after.filter((a) => faces.some((f) => iou(a.box, f.box) > 0)).length;
    }
    expect(strays).toBeLessThanOrEqual(1);
    // most photos need no second pass
    expect(passes).toBeLessThanOrEqual(3);
  });
});
