/** The chip of a fused embedder (issue 11 step 4): its parts' own chips back to back, mirrored part by part. */
import { describe, expect, it } from 'vitest';
import { flipHorizontal } from '../image/geometry.js';
import { alignArcFaceChip, alignDlibChip, alignEmbedderChip, flipEmbedderChip } from './align.js';

/** 68 points of a plausible frontal face in a 200 px image (dlib's mean shape, scaled). */
function face68(): Array<{ x: number; y: number }> {
  return Array.from({ length: 68 }, (_, i) => {
    const a = (i / 68) * 2 * Math.PI;
    return { x: 100 + 40 * Math.cos(a) + (i % 7), y: 100 + 50 * Math.sin(a) + (i % 5) };
  });
}

describe('alignEmbedderChip with parts', () => {
  const image = { width: 200, height: 200, data: Uint8Array.from({ length: 200 * 200 * 3 }, (_, i) => (i * 7919) % 256) };
  const fused = { chipSize: 150, parts: [{ chipSize: 150 }, { chipSize: 112, alignment: 'arcface' as const }] };

  it('is the dlib chip then the ArcFace chip of the same landmarks, and mirrors each part on its own', () => {
    const l = face68();
    const dlib = alignDlibChip(image, l, 150, 0.25);
    const arc = alignArcFaceChip(image, l, 112);
    const chip = alignEmbedderChip(fused, image, l, 0.25);
    expect(chip.length).toBe(dlib.length + arc.length);
    expect(Buffer.from(chip.subarray(0, dlib.length)).equals(Buffer.from(dlib))).toBe(true);
    expect(Buffer.from(chip.subarray(dlib.length)).equals(Buffer.from(arc))).toBe(true);
    const flipped = flipEmbedderChip(fused, chip);
    expect(Buffer.from(flipped.subarray(0, dlib.length)).equals(Buffer.from(flipHorizontal(dlib, 150, 150)))).toBe(true);
    expect(Buffer.from(flipped.subarray(dlib.length)).equals(Buffer.from(flipHorizontal(arc, 112, 112)))).toBe(true);
    // one model's chip is unchanged by the parts rule
    expect(Buffer.from(alignEmbedderChip({ chipSize: 112, alignment: 'arcface' }, image, l)).equals(Buffer.from(arc))).toBe(true);
  });
});
