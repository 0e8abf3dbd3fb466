/**
 * The grower is chosen once from the grow options (issue 13): FaceSegmenter picks it at load, so bad grow
 * options fail there, and the masks are those of the bare functions given the same options.
 */
import { describe, expect, it } from 'vitest';
import { growerFor } from './grower.js';
import { GROW_MAX_FACE_PX } from './growth.js';
import { LEARNED_GROW_MAX_FACE_PX } from './learned-grower.js';
import { maskArea } from './mask.js';
import { FaceSegmenter, segmentFromLandmarks } from './segment.js';
import { loadSkinClassifier } from './skin-classifier.js';
import { syntheticFace } from '../testkit/synthetic-face.testkit.js';

describe('the grower', () => {
  it('bad_grow_options_fail_when_the_segmenter_loads', async () => {
    await expect(FaceSegmenter.load({ method: 'landmarks', options: { grow: { classifier: 'nope' as 'contrast' } } })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      message: expect.stringMatching(/grow classifier must be one of/),
    });
  });

  it('is the one the options name, else the fallback; none when growing is off', async () => {
    const trees = await loadSkinClassifier();
    expect(growerFor(undefined)).toBeUndefined();
    expect(growerFor(false)).toBeUndefined();
    expect(growerFor(true)).toMatchObject({ classifier: 'contrast', maxFacePx: GROW_MAX_FACE_PX });
    expect(growerFor({ classifier: 'skin-only' })).toMatchObject({ classifier: 'skin-only', maxFacePx: GROW_MAX_FACE_PX });
    expect(growerFor(true, 'learned', trees)).toMatchObject({ classifier: 'learned', maxFacePx: LEARNED_GROW_MAX_FACE_PX });
    expect(() => growerFor(true, 'learned')).toThrow(/needs skinClassifier/);
  });

  it('a_segmenter_grows_as_the_bare_function_does_with_the_same_options', async () => {
    const { image, landmarks } = syntheticFace();
    const skinClassifier = await loadSkinClassifier();
    for (const grow of [true, { classifier: 'skin-only' as const }, { classifier: 'learned' as const }]) {
      const seg = await FaceSegmenter.load({ method: 'landmarks', skinClassifier, options: { grow } });
      try {
        const [[atLoad]] = (await seg.run([image], [[{ landmarks }]])) as [[ReturnType<typeof segmentFromLandmarks>]];
        const bare = segmentFromLandmarks(image, { landmarks }, { grow: grow === true ? true : { ...grow, skinClassifier } });
        expect(atLoad.mask).toEqual(bare.mask);
        // growing reached beyond the outline's own mask
        expect(maskArea(atLoad.mask)).toBeGreaterThan(maskArea(segmentFromLandmarks(image, { landmarks }).mask));
        // run() options that name their own growing win over the load-time ones
        const [[off]] = (await seg.run([image], [[{ landmarks }]], { grow: false })) as [[ReturnType<typeof segmentFromLandmarks>]];
        expect(off.mask).toEqual(segmentFromLandmarks(image, { landmarks }).mask);
      } finally {
        seg.dispose();
      }
    }
  });
});
