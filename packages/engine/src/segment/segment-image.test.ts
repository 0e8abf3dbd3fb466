/** segmentImage: `faceflow segment` as one library call (issue 13), over a given engine and the landmark segmenter. */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import sharp from 'sharp';
import type { Face } from '../recognize/engine.js';
import { faceQuality } from '../recognize/quality.js';
import { syntheticFace } from '../testkit/synthetic-face.testkit.js';
import { maskArea, rleCountsFromString } from './mask.js';
import { segmentFromLandmarks } from './segment.js';
import { segmentImage, segmentOverlay } from './segment-image.js';
import { loadVariantSegmenters } from './variants.js';

const { image, landmarks } = syntheticFace();
const face: Face = { box: { x: 26, y: 20, width: 44, height: 64 }, score: 0.9, keypoints: [], landmarks } as unknown as Face;
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'ff-segimg-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('segmentImage', () => {
  it('each_face_row_holds_the_mask_of_its_segment_and_the_mask_png_is_their_union', async () => {
    const seen: unknown[] = [];
    const engine = { run: async (_imgs: unknown, options: unknown) => (seen.push(options), [[face]]) };
    const segs = await loadVariantSegmenters();
    try {
      const mask = path.join(dir, 'm.png');
      const rows = await segmentImage({ ...segs, engine: engine as never, quality: faceQuality }, image, { method: 'landmarks', mask, wholeImageIsFace: true });
      expect(seen).toEqual([{ embed: false, wholeImageIsFace: true }]);
      const expected = segmentFromLandmarks(image, { landmarks });
      expect(rows).toHaveLength(1);
      expect(rows[0]).toMatchObject({ box: { x: 26, y: 20, width: 44, height: 64 }, score: 0.9, method: 'landmarks', area: maskArea(expected.mask) });
      expect(rows[0]!.rle.size).toEqual([image.height, image.width]);
      expect(rleCountsFromString(rows[0]!.rle.counts).reduce((a, b) => a + b, 0)).toBe(image.width * image.height);
      expect(rows[0]!.quality.measures.poseFrom).toBe('landmarks');
      const png = await sharp(await readFile(mask)).raw().toBuffer({ resolveWithObject: true });
      expect([png.info.width, png.info.height]).toEqual([image.width, image.height]);
      let on = 0;
      for (let k = 0; k < png.data.length; k += png.info.channels) if (png.data[k]! > 127) on++;
      expect(on).toBe(maskArea(expected.mask));
    } finally {
      segs.dispose();
    }
  });

  it('an_unwritable_overlay_is_one_invalid_argument_line_naming_the_file', async () => {
    const segs = await loadVariantSegmenters();
    try {
      const engine = { run: async () => [[face]] };
      const overlay = path.join(dir, 'no-such-dir', 'o.png');
      await expect(segmentImage({ ...segs, engine: engine as never, quality: faceQuality }, image, { method: 'landmarks', overlay })).rejects.toMatchObject({
        code: 'INVALID_ARGUMENT',
        message: expect.stringContaining(`cannot write ${overlay}`),
      });
    } finally {
      segs.dispose();
    }
  });

  it('the_overlay_tints_only_masked_pixels', () => {
    const s = segmentFromLandmarks(image, { landmarks });
    const o = segmentOverlay(image, [s]);
    expect(o.image.data[0]).toBe(image.data[0]); // the corner is outside the face
    expect(o.svg).toContain('<polygon');
  });
});
