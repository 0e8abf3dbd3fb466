/**
 * The variants' segmenters grow as chosen at load (issue 13 step 3: the grower is chosen once): a +grow
 * variant runs with the load-time grower and passes no grow options per call, a bare variant turns growth off.
 */
import { describe, expect, it } from 'vitest';
import { syntheticFace } from '../testkit/synthetic-face.testkit.js';
import { maskArea } from './mask.js';
import type { SegmentOptions } from './segment.js';
import { segmentFromLandmarks } from './segment.js';
import { loadVariantSegmenters, segmentVariant } from './variants.js';

describe('segmentation variants', () => {
  it('a_grow_variant_passes_no_grow_options_per_call_so_no_grower_is_built_per_call', async () => {
    const calls: SegmentOptions[] = [];
    const fake = { run: async (_i: unknown, faces: unknown[][], options: SegmentOptions = {}) => (calls.push(options), faces.map(() => [])) };
    const { image, landmarks } = syntheticFace();
    await segmentVariant({ landmarks: fake, mesh: fake }, 'mesh+grow', image, [{ landmarks }]);
    await segmentVariant({ landmarks: fake }, 'landmarks+grow', image, [{ landmarks }]);
    await segmentVariant({ landmarks: fake }, 'landmarks', image, [{ landmarks }]);
    expect(calls).toEqual([{}, {}, { grow: false }]);
  });

  it('the_load_time_classifier_grows_the_grow_variants_as_the_bare_function_does', async () => {
    const { image, landmarks } = syntheticFace();
    const segs = await loadVariantSegmenters({ classifier: 'skin-only' });
    try {
      const [grown] = await segmentVariant(segs, 'landmarks+grow', image, [{ landmarks }]);
      const [bare] = await segmentVariant(segs, 'landmarks', image, [{ landmarks }]);
      expect(grown!.mask).toEqual(segmentFromLandmarks(image, { landmarks }, { grow: { classifier: 'skin-only' } }).mask);
      expect(bare!.mask).toEqual(segmentFromLandmarks(image, { landmarks }).mask);
      expect(maskArea(grown!.mask)).toBeGreaterThan(maskArea(bare!.mask));
    } finally {
      segs.dispose();
    }
  });

  it('a_mesh_variant_without_the_mesh_segmenter_is_refused', async () => {
    const segs = await loadVariantSegmenters();
    const { image, landmarks } = syntheticFace();
    try {
      await expect(segmentVariant(segs, 'mesh+grow', image, [{ landmarks }])).rejects.toMatchObject({ code: 'INTERNAL' });
    } finally {
      segs.dispose();
    }
  });
});
