/**
 * The engine on real photos shipped by an npm package (@vladmandic/face-api's demo group photos), on the
 * WebAssembly backend that CI has.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import sharp from 'sharp';
import { FaceEngine, type DetectedFace } from './engine.js';
import { decodeImage } from '../image/image.js';
import { tf } from '../runtime/tf.js';
import { l2Distance } from '../match/decide.js';
import { GROUP_PHOTOS, realFaces } from '../testkit/fixtures.testkit.js';
import { iou as boxIou, type RgbImage } from '../image/geometry.js';

let engine: FaceEngine;
beforeAll(async () => {
  engine = await FaceEngine.load({ backend: process.env.FACEFLOW_BACKEND ?? 'wasm' });
});
afterAll(() => engine?.dispose());

async function cropFace(img: RgbImage, face: DetectedFace, scale: number, out: number, transform?: (s: sharp.Sharp) => sharp.Sharp): Promise<RgbImage> {
  const side = Math.max(face.box.width, face.box.height) * scale;
  const left = Math.max(0, Math.round(face.box.x + face.box.width / 2 - side / 2));
  const top = Math.max(0, Math.round(face.box.y + face.box.height / 2 - side / 2));
  const w = Math.min(img.width - left, Math.round(side));
  const h = Math.min(img.height - top, Math.round(side));
  let s = sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } }).extract({ left, top, width: w, height: h }).resize(out, out);
  if (transform) s = transform(s);
  const jpeg = await s.jpeg({ quality: 85 }).toBuffer();
  return decodeImage(jpeg);
}

describe('FaceEngine on group photos', () => {
  it('finds every face of each group photo, with 68 landmarks inside each box', async () => {
    for (const photo of GROUP_PHOTOS) {
      const img = await decodeImage(photo.file);
      const [all] = await engine.run([img], { embed: false });
      // a known non-face of the default detector is not counted (fixtures.testkit.ts), any other is
      const faces = realFaces(photo, all!);
      expect(faces.length, photo.file).toBe(photo.faces);
      expect(all!.length - faces.length, photo.file).toBeLessThanOrEqual(photo.notFaces?.length ?? 0);
      for (const f of faces) {
        expect(f.score).toBeGreaterThan(0.5);
        expect(f.landmarks).toHaveLength(68);
        const inside = f.landmarks.filter((p) => p.x > f.box.x - f.box.width * 0.3 && p.x < f.box.x + f.box.width * 1.3 && p.y > f.box.y - f.box.height * 0.3 && p.y < f.box.y + f.box.height * 1.3);
        expect(inside.length).toBeGreaterThan(60);
      }
    }
  });

  it('finds a 40 px face in a 1920x1080 frame (tiling)', async () => {
    const img = await decodeImage(GROUP_PHOTOS[0]!.file);
    const [faces] = await engine.run([img], { embed: false });
    const face = await cropFace(img, faces![0]!, 1.6, 64);
    // paste a 64 px crop (face ~40 px) into a grey 1080p frame
    const frame = await sharp({ create: { width: 1920, height: 1080, channels: 3, background: { r: 90, g: 90, b: 90 } } })
      .composite([{ input: await sharp(face.data, { raw: { width: 64, height: 64, channels: 3 } }).png().toBuffer(), left: 1500, top: 700 }])
      .jpeg()
      .toBuffer();
    const [found] = await engine.run([await decodeImage(frame)], { embed: false });
    expect(found!.length).toBe(1);
    expect(found![0]!.box.x).toBeGreaterThan(1490);
    expect(found![0]!.box.y).toBeGreaterThan(690);
  });

  it('regions: near the faces of a previous frame it finds those faces again, moved, and looks nowhere else', async () => {
    for (const photo of GROUP_PHOTOS) {
      const img = await decodeImage(photo.file);
      // the faces only: a known non-face (fixtures.testkit.ts) need not be found again
      const full = [realFaces(photo, (await engine.run([img], { embed: false }))[0]!)];
      // the previous frame's boxes, shifted by a third of a face: the faces have moved since
      const previous = full[0]!.map((f) => ({ ...f.box, x: f.box.x + f.box.width / 3, y: f.box.y - f.box.height / 4 }));
      const [near] = await engine.run([img], { embed: false, regions: [previous] });
      for (const f of full[0]!) {
        const iou = Math.max(...near!.map((g) => boxIou(f.box, g.box)));
        expect(iou, photo.file).toBeGreaterThan(0.5);
      }
      expect(near!.length, photo.file).toBe(full[0]!.length);
      // nothing to follow: nothing is run; a region of background: no face
      const [none] = await engine.run([img], { embed: false, regions: [[]] });
      expect(none).toEqual([]);
    }
    const grey = await decodeImage(await sharp({ create: { width: 640, height: 480, channels: 3, background: { r: 90, g: 90, b: 90 } } }).jpeg().toBuffer());
    const [bg] = await engine.run([grey], { embed: false, regions: [[{ x: 200, y: 150, width: 80, height: 80 }]] });
    expect(bg).toEqual([]);
  });

  it('trackOnlyNear: a face over a given box is located only (no landmarks, no embedding), the others in full', async () => {
    const photo = GROUP_PHOTOS[0]!;
    const img = await decodeImage(photo.file);
    const [full] = await engine.run([img]);
    const [first, ...rest] = full!;
    const [mixed] = await engine.run([img], { trackOnlyNear: [[first!.box]] });
    expect(mixed).toHaveLength(full!.length);
    const followed = mixed!.filter((f) => f.trackOnly);
    expect(followed).toHaveLength(1);
    expect(boxIou(followed[0]!.box, first!.box)).toBeGreaterThan(0.9);
    expect(followed[0]!.embedding).toBeUndefined();
    expect(followed[0]!.landmarks).toEqual([]);
    const embedded = mixed!.filter((f) => !f.trackOnly);
    expect(embedded).toHaveLength(rest.length);
    for (const f of embedded) expect(f.embedding).toHaveLength(128);
  });

  it('embeddings are L2-normalised, and a person is closer to herself (re-photographed) than to the others', async () => {
    const img = await decodeImage(GROUP_PHOTOS[3]!.file);
    const [faces] = await engine.run([img]);
    expect(faces!.length).toBe(4);
    for (const f of faces!) expect(Math.hypot(...f.embedding!)).toBeCloseTo(1, 4);
    // each face, cut out, mirrored, darkened, rescaled and re-encoded, must match itself before anyone else
    for (let i = 0; i < faces!.length; i++) {
      const probe = await cropFace(img, faces![i]!, 2.0, 180, (s) => s.flop().modulate({ brightness: 0.8 }));
      const [p] = await engine.run([probe], { maxFaces: 1 });
      expect(p!.length).toBe(1);
      const d = faces!.map((f) => l2Distance(f.embedding!, p![0]!.embedding!));
      const self = d[i]!;
      const others = d.filter((_, k) => k !== i);
      expect(self).toBeLessThan(Math.min(...others));
    }
  });

  it('a tight face crop (the notebook 96x96 pictures) works detected or declared whole', async () => {
    const img = await decodeImage(GROUP_PHOTOS[1]!.file);
    const [faces] = await engine.run([img]);
    const crop = await cropFace(img, faces![0]!, 1.15, 96);
    const [whole] = await engine.run([crop], { wholeImageIsFace: true });
    expect(whole!.length).toBe(1);
    const own = l2Distance(whole![0]!.embedding!, faces![0]!.embedding!);
    const others = faces!.slice(1).map((f) => l2Distance(whole![0]!.embedding!, f.embedding!));
    expect(own).toBeLessThan(Math.min(...others));
  });

  it('an image with no face gives no face, not an error', async () => {
    const blank = await sharp({ create: { width: 320, height: 240, channels: 3, background: { r: 30, g: 120, b: 200 } } }).png().toBuffer();
    const [faces] = await engine.run([await decodeImage(blank)]);
    expect(faces).toEqual([]);
  });

  it('leaks no tensors: the count is unchanged after repeated detect + landmarks + embed calls', async () => {
    const img = await decodeImage(GROUP_PHOTOS[0]!.file);
    await engine.run([img]);
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) await engine.run([img, img]);
    await engine.run([img], { wholeImageIsFace: true });
    expect(tf.memory().numTensors).toBe(before);
  });
});
