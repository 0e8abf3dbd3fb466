import { describe, expect, it } from 'vitest';
import { Rng } from '../eval/rng.js';
import { parseDegrade, degradeLabel, resizeRgb, lowResolution, toGrayscale, gaussianBlur, adjustBrightness, jpegRoundTrip, degradePixels } from '../image/degrade.js';
import { parseAugmentations, drawAugmentation, chipFaceSize, faceSizeOf, AUGMENTATIONS } from './augment.js';

function gradient(w: number, h: number): Uint8Array {
  const px = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) px.set([x * 8 % 256, y * 8 % 256, (x + y) * 4 % 256], (y * w + x) * 3);
  return px;
}

describe('CCTV augmentations', () => {
  it('parses augmentation flags and degradation specs, naming what is wrong', () => {
    expect(parseAugmentations('grayscale, lowres,jpeg,grayscale')).toEqual(['grayscale', 'lowres', 'jpeg']);
    expect(() => parseAugmentations('grayscale,fisheye')).toThrow(/unknown augmentation "fisheye"/);
    expect(parseDegrade('grayscale,lowres32')).toEqual([{ op: 'grayscale' }, { op: 'lowres', face: 32 }]);
    expect(parseDegrade('blur1.5,brightness0.6,jpeg20')).toEqual([{ op: 'blur', sigma: 1.5 }, { op: 'brightness', gain: 0.6, offset: 0 }, { op: 'jpeg', quality: 20 }]);
    expect(degradeLabel(parseDegrade('grayscale,lowres32,jpeg20'))).toBe('grayscale,lowres32,jpeg20');
    expect(() => parseDegrade('lowres')).toThrow(/face size/);
    expect(() => parseDegrade('jpeg0')).toThrow(/quality/);
    expect(() => parseDegrade('sepia')).toThrow(/unknown/);
  });

  it('grayscale, brightness and resizing do what they say', () => {
    expect(Array.from(toGrayscale(Uint8Array.from([255, 0, 0, 10, 20, 30])))).toEqual([76, 76, 76, 18, 18, 18]);
    expect(Array.from(adjustBrightness(Uint8Array.from([0, 100, 200]), 1.5, 10))).toEqual([10, 160, 255]);
    // area average: a 4x2 image of two 2x2 blocks shrinks to their means
    const px = Uint8Array.from([0, 0, 0, 10, 10, 10, 100, 100, 100, 110, 110, 110, 20, 20, 20, 30, 30, 30, 120, 120, 120, 130, 130, 130]);
    expect(Array.from(resizeRgb(px, 4, 2, 2, 1))).toEqual([15, 15, 15, 115, 115, 115]);
    // enlarging a constant image keeps it constant
    expect(new Set(resizeRgb(new Uint8Array(2 * 2 * 3).fill(77), 2, 2, 7, 5))).toEqual(new Set([77]));
    const g = gradient(40, 30);
    expect(lowResolution(g, 40, 30, 1)).toEqual(g);
    const low = lowResolution(g, 40, 30, 0.25);
    expect(low.length).toBe(g.length);
    expect(low).not.toEqual(g);
    const blurred = gaussianBlur(g, 40, 30, 1.5);
    expect(blurred.length).toBe(g.length);
    expect(new Set(gaussianBlur(new Uint8Array(10 * 10 * 3).fill(50), 10, 10, 2))).toEqual(new Set([50]));
  });

  it('a JPEG round trip keeps the size and changes the pixels a little', async () => {
    const g = gradient(48, 48);
    const j = await jpegRoundTrip(g, 48, 48, 20);
    expect(j.length).toBe(g.length);
    let diff = 0;
    for (let i = 0; i < g.length; i++) diff += Math.abs(g[i]! - j[i]!);
    expect(diff / g.length).toBeGreaterThan(0.5);
    expect(diff / g.length).toBeLessThan(40);
    const grey = await jpegRoundTrip(toGrayscale(g), 48, 48, 50);
    expect(grey.length).toBe(g.length);
  });

  it('draws seeded augmentations: the same seed the same ops, never none', async () => {
    for (let s = 0; s < 50; s++) {
      const a = drawAugmentation(AUGMENTATIONS, new Rng(s));
      expect(a).toEqual(drawAugmentation(AUGMENTATIONS, new Rng(s)));
      expect(a.length).toBeGreaterThan(0);
      const only = drawAugmentation(['lowres'], new Rng(s));
      expect(only).toHaveLength(1);
      expect(only[0]!.op).toBe('lowres');
      const face = (only[0] as { face: number }).face;
      expect(face).toBeGreaterThanOrEqual(20);
      expect(face).toBeLessThanOrEqual(60);
    }
    expect(drawAugmentation([], new Rng(1))).toEqual([]);
    expect(chipFaceSize(150, 0.25)).toBe(100);
    const lm = Array.from({ length: 68 }, () => ({ x: 0, y: 0 }));
    lm[17] = { x: 10, y: 50 };
    lm[26] = { x: 108, y: 50 };
    expect(faceSizeOf(lm)).toBeCloseTo(100, 6);
    expect(() => faceSizeOf([])).toThrow(/68 landmarks/);
    const g = gradient(30, 30);
    const ops = drawAugmentation(AUGMENTATIONS, new Rng(3));
    expect(await degradePixels(g, 30, 30, ops, 20)).toEqual(await degradePixels(g, 30, 30, ops, 20));
    expect(await degradePixels(g, 30, 30, [], 20)).toEqual(g);
  });
});
