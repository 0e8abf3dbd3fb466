/** Test images that an npm package ships: @vladmandic/face-api's demo group photos. */
import { createRequire } from 'node:module';
import path from 'node:path';

const require = createRequire(import.meta.url);
const demo = path.join(path.dirname(require.resolve('@vladmandic/face-api/package.json')), 'demo');

/** sampleN.jpg with the number of faces a person counts in it (looked at by eye). */
export const GROUP_PHOTOS: Array<{ file: string; faces: number }> = [
  { file: path.join(demo, 'sample1.jpg'), faces: 3 },
  { file: path.join(demo, 'sample2.jpg'), faces: 3 },
  { file: path.join(demo, 'sample3.jpg'), faces: 3 },
  { file: path.join(demo, 'sample4.jpg'), faces: 4 },
  { file: path.join(demo, 'sample5.jpg'), faces: 5 },
  { file: path.join(demo, 'sample6.jpg'), faces: 4 },
];
