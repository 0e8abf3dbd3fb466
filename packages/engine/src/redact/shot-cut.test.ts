import { describe, expect, it } from 'vitest';
import { DEFAULT_SHOT_CUT_THRESHOLD, frameSignature, signatureChange } from './shot-cut.js';
import type { RgbImage } from '../image/geometry.js';

/** A 320x180 frame: a gradient background and a bright square at (x, 60). */
function frame(x: number, palette: 'warm' | 'cold'): RgbImage {
  const W = 320, H = 180;
  const data = new Uint8Array(W * H * 3);
  for (let y = 0; y < H; y++) {
    for (let i = 0; i < W; i++) {
      const o = (y * W + i) * 3;
      const inSquare = i >= x && i < x + 40 && y >= 60 && y < 100;
      const g = Math.round((255 * i) / W);
      if (palette === 'warm') data.set(inSquare ? [250, 250, 250] : [200, g, 60], o);
      else data.set(inSquare ? [250, 250, 250] : [30, 255 - g, 220], o);
    }
  }
  return { width: W, height: H, data };
}

describe('shot cuts', () => {
  it('a moving object within a shot stays under the threshold, a change of scene is over it', () => {
    const a = frameSignature(frame(100, 'warm'));
    expect(signatureChange(a, frameSignature(frame(100, 'warm')))).toBe(0);
    const moved = signatureChange(a, frameSignature(frame(112, 'warm')));
    expect(moved).toBeGreaterThan(0);
    expect(moved).toBeLessThan(DEFAULT_SHOT_CUT_THRESHOLD);
    expect(signatureChange(a, frameSignature(frame(100, 'cold')))).toBeGreaterThan(DEFAULT_SHOT_CUT_THRESHOLD);
  });
});
