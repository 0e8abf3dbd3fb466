import { describe, expect, it } from 'vitest';
import { decodeImage, type Point, type RgbImage } from '@faceflow/engine';
import { faceCropJpeg, type HiddenFace } from './crops.js';

/** A frame of 1-px black and white checks: any patch of it is as busy as can be, until it is blurred. */
function checks(width: number, height: number): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) data.fill((x + y) % 2 ? 255 : 0, (y * width + x) * 3, (y * width + x) * 3 + 3);
  return { data, width, height };
}

/** 68 points spread over the box's inside, standing in for landmarks. */
function landmarksIn(b: { x: number; y: number; width: number; height: number }): Point[] {
  return Array.from({ length: 68 }, (_, i) => ({ x: b.x + b.width * (0.15 + 0.07 * (i % 10)), y: b.y + b.height * (0.15 + 0.1 * Math.floor(i / 10)) }));
}

/** Standard deviation of the grey values in a rectangle (crop pixels) of a decoded crop. */
function spread(img: RgbImage, x0: number, y0: number, x1: number, y1: number): number {
  const v: number[] = [];
  for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) v.push(img.data[(y * img.width + x) * 3]!);
  const m = v.reduce((a, b) => a + b, 0) / v.length;
  return Math.sqrt(v.reduce((a, b) => a + (b - m) ** 2, 0) / v.length);
}

describe('faceCropJpeg', () => {
  const frame = checks(240, 120);
  const own = { x: 40, y: 40, width: 60, height: 60 };
  // the neighbour's face starts 45 px into the crop's right part (crop: x 31..109)
  const neighbour: HiddenFace = { box: { x: 85, y: 40, width: 60, height: 60 }, landmarks: landmarksIn({ x: 85, y: 40, width: 60, height: 60 }) };

  it('a stored crop hides the other faces of the frame that reach into it, and keeps its own face', async () => {
    const plain = (await decodeImage(await faceCropJpeg(frame, own, 78, 1.3))) as RgbImage;
    const hidden = (await decodeImage(await faceCropJpeg(frame, own, 78, 1.3, [neighbour]))) as RgbImage;
    expect([hidden.width, hidden.height]).toEqual([78, 78]);
    // crop pixel = frame pixel - 31 (78 px, 1:1): the neighbour's middle is at frame x 100..109, y 60..80
    expect(spread(plain, 70, 29, 78, 49)).toBeGreaterThan(60);
    expect(spread(hidden, 70, 29, 78, 49)).toBeLessThan(10);
    // the crop's own face, left of the neighbour's outline, is untouched
    expect(spread(hidden, 12, 29, 30, 49)).toBeGreaterThan(60);
  });

  it('a face whose box misses the crop changes nothing', async () => {
    const far: HiddenFace = { box: { x: 180, y: 40, width: 50, height: 50 }, landmarks: landmarksIn({ x: 180, y: 40, width: 50, height: 50 }) };
    expect(await faceCropJpeg(frame, own, 78, 1.3, [far])).toEqual(await faceCropJpeg(frame, own, 78, 1.3));
  });
});
