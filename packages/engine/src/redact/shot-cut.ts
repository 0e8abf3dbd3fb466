/**
 * Shot-cut detection for edited footage (TV, film, a montage of cameras): the mean absolute difference between
 * two frames' coarse colour grids, as in PySceneDetect's content detector (a threshold on the mean change of
 * a downscaled frame's colour). Within a shot, motion moves a few grid cells; a cut changes most of them.
 * Redaction's tracker ends every track at a cut, so that a track never carries one person's decision onto the
 * next shot's face at the same place.
 */
import type { RgbImage } from '../image/geometry.js';

/** grid cells across and down: coarse enough that motion within a shot averages out */
export const SHOT_GRID_W = 16;
export const SHOT_GRID_H = 9;
/**
 * mean absolute change of a cell's colour (0-255) at or above which two frames are in different shots. On the
 * sitcom clip of BENCHMARKS.md: cuts 19.5-31.6, within a shot at most 8.6 (a fast pan); median 0.4
 */
export const DEFAULT_SHOT_CUT_THRESHOLD = 14;

/** The frame's mean colour in a SHOT_GRID_W x SHOT_GRID_H grid (r, g, b per cell), sampling every 4th pixel. */
export function frameSignature(image: RgbImage): Float32Array {
  const { width: W, height: H, data } = image;
  const sums = new Float32Array(SHOT_GRID_W * SHOT_GRID_H * 3);
  const counts = new Uint32Array(SHOT_GRID_W * SHOT_GRID_H);
  for (let y = 0; y < H; y += 4) {
    const gy = Math.min(SHOT_GRID_H - 1, Math.floor((y * SHOT_GRID_H) / H));
    for (let x = 0; x < W; x += 4) {
      const gx = Math.min(SHOT_GRID_W - 1, Math.floor((x * SHOT_GRID_W) / W));
      const c = gy * SHOT_GRID_W + gx;
      const o = (y * W + x) * 3;
      sums[c * 3]! += data[o]!;
      sums[c * 3 + 1]! += data[o + 1]!;
      sums[c * 3 + 2]! += data[o + 2]!;
      counts[c]!++;
    }
  }
  for (let c = 0; c < counts.length; c++) {
    const n = counts[c]! || 1;
    sums[c * 3]! /= n;
    sums[c * 3 + 1]! /= n;
    sums[c * 3 + 2]! /= n;
  }
  return sums;
}

/** Mean absolute difference of two signatures (0-255). */
export function signatureChange(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += Math.abs(a[i]! - b[i]!);
  return s / a.length;
}
