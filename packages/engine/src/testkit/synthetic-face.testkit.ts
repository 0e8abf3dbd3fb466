/** A synthetic face for segmentation tests that need no model: pixels and 68 landmarks. */
import type { Point, RgbImage } from '../image/geometry.js';

/** A skin-toned oval face on a blue-grey background with a brown cap, and 68 points where a frontal face has them. */
export function syntheticFace(): { image: RgbImage; landmarks: Point[] } {
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
