/**
 * The geometry primitives every package shares (issue 13 step 5: defined once): a face box, the overlap of
 * two boxes, the distance of two embeddings. Pure: no imports, so anything may use it (the engine, the
 * matcher's tracker, the message schemas).
 */

/** An axis-aligned box in pixels: top-left corner and size. */
export interface Box {
  x: number;
  y: number;
  width: number;
  height: number;
}

/** Intersection over union of two boxes (0 when they do not overlap or both are empty). */
export function iou(a: Box, b: Box): number {
  const x1 = Math.max(a.x, b.x);
  const y1 = Math.max(a.y, b.y);
  const x2 = Math.min(a.x + a.width, b.x + b.width);
  const y2 = Math.min(a.y + a.height, b.y + b.height);
  const inter = Math.max(0, x2 - x1) * Math.max(0, y2 - y1);
  const union = a.width * a.height + b.width * b.height - inter;
  return union <= 0 ? 0 : inter / union;
}

/**
 * The L2 (Euclidean) distance of two embeddings. Equal lengths are the caller's to check (the engine's
 * l2Distance checks them and says so); here the loop runs over `a`.
 */
export function l2(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) {
    const d = a[i]! - b[i]!;
    s += d * d;
  }
  return Math.sqrt(s);
}

/**
 * `v` scaled to unit L2 norm, as a new Float32Array (embeddings are compared on the unit sphere); a zero
 * vector comes back as zeros rather than NaN.
 */
export function unitVector(v: ArrayLike<number>): Float32Array {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i]! * v[i]!;
  const n = Math.sqrt(s) || 1;
  return Float32Array.from(v as ArrayLike<number>, (a) => a / n);
}
