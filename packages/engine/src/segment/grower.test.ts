/**
 * The grower is chosen once from the grow options (issue 13): FaceSegmenter picks it at load, so bad grow
 * options fail there, and the masks are those of the bare functions given the same options.
 */
import { describe, expect, it } from 'vitest';
import type { Point, RgbImage } from '../image/geometry.js';
import { growerFor } from './grower.js';
import { GROW_MAX_FACE_PX } from './growth.js';
import { LEARNED_GROW_MAX_FACE_PX } from './learned-grower.js';
import { maskArea } from './mask.js';
import { FaceSegmenter, segmentFromLandmarks } from './segment.js';
import { loadSkinClassifier } from './skin-classifier.js';

/** A skin-toned oval face on a blue-grey background with a brown cap, and 68 points where a frontal face has them. */
function syntheticFace(): { image: RgbImage; landmarks: Point[] } {
  const W = 96, H = 112;
  const data = new Uint8Array(W * H * 3);
  let s = 5;
  const rnd = (): number => (s = (s * 1103515245 + 12345) % 2147483648) / 2147483648;
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      const inFace = ((x - 48) / 22) ** 2 + ((y - 52) / 28) ** 2 <= 1;
      const neck = y > 75 && Math.abs(x - 48) < 12;
      const cap = y < 30 && Math.abs(x - 48) < 30;
      const base = inFace || neck ? [205, 150, 120] : cap ? [70, 45, 30] : [90, 110, 140];
      for (let ch = 0; ch < 3; ch++) data[(y * W + x) * 3 + ch] = Math.max(0, Math.min(255, base[ch]! + Math.round((rnd() - 0.5) * 30)));
    }
  }
  const L = Array.from({ length: 68 }, () => ({ x: 48, y: 52 }));
  for (let i = 0; i <= 16; i++) { const a = Math.PI * (1 - i / 16); L[i] = { x: 48 + 22 * Math.cos(a), y: 44 + 36 * Math.sin(a) * 0.9 }; }
  for (let i = 17; i <= 26; i++) L[i] = { x: 30 + (i - 17) * 4, y: 38 };
  for (let i = 27; i <= 35; i++) L[i] = { x: 48 + (i > 30 ? (i - 33) * 3 : 0), y: 44 + (i <= 30 ? (i - 27) * 4 : 16) };
  for (let i = 36; i <= 41; i++) L[i] = { x: 36 + (i - 36) * 2, y: 44 + (i % 2) };
  for (let i = 42; i <= 47; i++) L[i] = { x: 52 + (i - 42) * 2, y: 44 + (i % 2) };
  for (let i = 48; i <= 67; i++) L[i] = { x: 40 + ((i - 48) % 10) * 1.8, y: 70 + (i < 58 ? 0 : 2) };
  return { image: { width: W, height: H, data }, landmarks: L };
}

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
