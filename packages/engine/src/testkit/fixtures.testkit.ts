/** Test images that an npm package ships: @vladmandic/face-api's demo group photos. */
import { createRequire } from 'node:module';
import path from 'node:path';

const require = createRequire(import.meta.url);
const demo = path.join(path.dirname(require.resolve('@vladmandic/face-api/package.json')), 'demo');

/**
 * sampleN.jpg with the number of faces a person counts in it (looked at by eye), and the places where the
 * default detector is known to take something else for a face (`notFaces`, image pixels): YuNet at its
 * default threshold 0.6 finds a dark blob low on the left of sample1 at 0.73 (cropped and looked at by eye:
 * no face). A test counts faces with `realFaces`, so any other false detection or miss still fails it.
 */
export const GROUP_PHOTOS: Array<{ file: string; faces: number; notFaces?: Array<{ x: number; y: number; width: number; height: number }> }> = [
  { file: path.join(demo, 'sample1.jpg'), faces: 3, notFaces: [{ x: 100, y: 590, width: 240, height: 240 }] },
  { file: path.join(demo, 'sample2.jpg'), faces: 3 },
  { file: path.join(demo, 'sample3.jpg'), faces: 3 },
  { file: path.join(demo, 'sample4.jpg'), faces: 4 },
  { file: path.join(demo, 'sample5.jpg'), faces: 5 },
  { file: path.join(demo, 'sample6.jpg'), faces: 4 },
];

/** The detections of `photo` that are not in one of its known `notFaces` places (by the box's centre). */
export function realFaces<T extends { box: { x: number; y: number; width: number; height: number } }>(photo: (typeof GROUP_PHOTOS)[number], faces: readonly T[]): T[] {
  const inside = (f: T, r: { x: number; y: number; width: number; height: number }) => {
    const cx = f.box.x + f.box.width / 2, cy = f.box.y + f.box.height / 2;
    return cx >= r.x && cx <= r.x + r.width && cy >= r.y && cy <= r.y + r.height;
  };
  return faces.filter((f) => !(photo.notFaces ?? []).some((r) => inside(f, r)));
}
