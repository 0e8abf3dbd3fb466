/** Plain-number geometry shared by the detector, the aligner and the segmenter. No tensors here. */
// Box and iou are defined once, in @faceflow/shared's root (issue 13 step 5); re-exported for the engine's files
import { iou, type Box } from '@faceflow/shared';

export { iou, type Box };

export interface Point {
  x: number;
  y: number;
}


/** An RGB image, 3 bytes a pixel, row-major (height x width x 3). */
export interface RgbImage {
  data: Uint8Array;
  width: number;
  height: number;
}

/**
 * Greedy non-maximum suppression that keeps the best-scoring candidate of each overlapping group as it is
 * (OpenCV's NMSBoxes, which YuNet's FaceDetectorYN decoding uses).
 */
export function nms<T extends { box: Box; score: number }>(candidates: T[], iouThreshold: number): T[] {
  const sorted = [...candidates].sort((a, b) => b.score - a.score);
  const kept: T[] = [];
  for (const c of sorted) {
    if (kept.every((k) => iou(k.box, c.box) <= iouThreshold)) kept.push(c);
  }
  return kept;
}

/**
 * Greedy non-maximum suppression. Overlapping candidates above `iouThreshold` are merged into the kept one
 * by score-weighted averaging of their boxes and keypoints (MediaPipe's "weighted NMS", which BlazeFace was
 * tuned with: it steadies boxes across tiles and frames).
 */
export function weightedNms<T extends { box: Box; score: number; keypoints: Point[] }>(
  candidates: T[],
  iouThreshold: number,
): T[] {
  const sorted = [...candidates].sort((a, b) => b.score - a.score);
  const used = new Array<boolean>(sorted.length).fill(false);
  const kept: T[] = [];
  for (let i = 0; i < sorted.length; i++) {
    if (used[i]) continue;
    const head = sorted[i]!;
    const group: T[] = [head];
    used[i] = true;
    for (let j = i + 1; j < sorted.length; j++) {
      if (!used[j] && iou(head.box, sorted[j]!.box) > iouThreshold) {
        used[j] = true;
        group.push(sorted[j]!);
      }
    }
    if (group.length === 1) {
      kept.push(head);
      continue;
    }
    let total = 0;
    const box = { x: 0, y: 0, width: 0, height: 0 };
    const keypoints = head.keypoints.map(() => ({ x: 0, y: 0 }));
    for (const g of group) {
      total += g.score;
      box.x += g.box.x * g.score;
      box.y += g.box.y * g.score;
      box.width += g.box.width * g.score;
      box.height += g.box.height * g.score;
      g.keypoints.forEach((p, k) => {
        keypoints[k]!.x += p.x * g.score;
        keypoints[k]!.y += p.y * g.score;
      });
    }
    kept.push({
      ...head,
      box: { x: box.x / total, y: box.y / total, width: box.width / total, height: box.height / total },
      keypoints: keypoints.map((p) => ({ x: p.x / total, y: p.y / total })),
    });
  }
  return kept;
}

/** A 2x3 affine matrix [a, b, tx; c, d, ty]: x' = a*x + b*y + tx, y' = c*x + d*y + ty. */
export type Affine = [number, number, number, number, number, number];

/**
 * Least-squares similarity transform (rotation, uniform scale, translation) mapping `from` onto `to`
 * (Umeyama 1991, without reflection), as dlib's find_similarity_transform computes it.
 */
export function similarityTransform(from: Point[], to: Point[]): Affine {
  const n = from.length;
  if (n < 2 || n !== to.length) throw new Error(`similarityTransform needs >= 2 matching points, got ${n}/${to.length}`);
  let mfx = 0, mfy = 0, mtx = 0, mty = 0;
  for (let i = 0; i < n; i++) {
    mfx += from[i]!.x; mfy += from[i]!.y; mtx += to[i]!.x; mty += to[i]!.y;
  }
  mfx /= n; mfy /= n; mtx /= n; mty /= n;
  // For the 2D similarity case the closed form reduces to two sums (complex-number least squares).
  let sxx = 0, sxy = 0, varFrom = 0;
  for (let i = 0; i < n; i++) {
    const fx = from[i]!.x - mfx, fy = from[i]!.y - mfy;
    const tx = to[i]!.x - mtx, ty = to[i]!.y - mty;
    sxx += fx * tx + fy * ty;
    sxy += fx * ty - fy * tx;
    varFrom += fx * fx + fy * fy;
  }
  const a = sxx / varFrom;
  const b = sxy / varFrom;
  // x' = a*x - b*y + tx ; y' = b*x + a*y + ty
  return [a, -b, mtx - (a * mfx - b * mfy), b, a, mty - (b * mfx + a * mfy)];
}

export function applyAffine(m: Affine, p: Point): Point {
  return { x: m[0] * p.x + m[1] * p.y + m[2], y: m[3] * p.x + m[4] * p.y + m[5] };
}

export function invertAffine(m: Affine): Affine {
  const [a, b, tx, c, d, ty] = m;
  const det = a * d - b * c;
  const ia = d / det, ib = -b / det, ic = -c / det, id = a / det;
  return [ia, ib, -(ia * tx + ib * ty), ic, id, -(ic * tx + id * ty)];
}

/**
 * Samples an output image of `width` x `height` where output pixel (u, v) takes the source colour at
 * `outToSrc(u, v)` (bilinear; outside the source is black, as dlib's extract_image_chip pads).
 * When one output pixel spans more than ~1.5 source pixels, it averages a grid of sub-samples so that
 * downscaling a large face does not alias (dlib uses an image pyramid for the same reason); at most
 * `maxSubsamples` per side (cost grows with its square).
 * Pixel centres are at integer coordinates, as in dlib.
 */
export function warpAffine(src: RgbImage, outToSrc: Affine, width: number, height: number, maxSubsamples = 4): Uint8Array {
  const out = new Uint8Array(width * height * 3);
  const scale = Math.sqrt(Math.abs(outToSrc[0] * outToSrc[4] - outToSrc[1] * outToSrc[3]));
  const k = scale > 1.5 ? Math.min(maxSubsamples, Math.ceil(scale)) : 1;
  const { data, width: sw, height: sh } = src;
  if (k === 1 && outToSrc[1] === 0 && outToSrc[3] === 0) {
    warpAxisAligned(data, sw, sh, outToSrc[0], outToSrc[2], outToSrc[4], outToSrc[5], out, width, height);
    return out;
  }
  const m0 = outToSrc[0], m1 = outToSrc[1], m2 = outToSrc[2], m3 = outToSrc[3], m4 = outToSrc[4], m5 = outToSrc[5];
  // the sub-sample offsets within an output pixel
  const off = new Float64Array(k);
  for (let t = 0; t < k; t++) off[t] = k === 1 ? 0 : (t + 0.5) / k - 0.5;
  const kk = k * k;
  let o = 0;
  for (let v = 0; v < height; v++) {
    for (let u = 0; u < width; u++, o += 3) {
      let a0 = 0, a1 = 0, a2 = 0;
      for (let sv = 0; sv < k; sv++) {
        const ov = v + off[sv]!;
        for (let su = 0; su < k; su++) {
          const ou = u + off[su]!;
          const x = m0 * ou + m1 * ov + m2;
          const y = m3 * ou + m4 * ov + m5;
          const x0 = Math.floor(x), y0 = Math.floor(y);
          const fx = x - x0, fy = y - y0;
          if (x0 >= 0 && y0 >= 0 && x0 + 1 < sw && y0 + 1 < sh) {
            const p = (y0 * sw + x0) * 3, q = p + sw * 3;
            a0 += (data[p]! * (1 - fx) + data[p + 3]! * fx) * (1 - fy) + (data[q]! * (1 - fx) + data[q + 3]! * fx) * fy;
            a1 += (data[p + 1]! * (1 - fx) + data[p + 4]! * fx) * (1 - fy) + (data[q + 1]! * (1 - fx) + data[q + 4]! * fx) * fy;
            a2 += (data[p + 2]! * (1 - fx) + data[p + 5]! * fx) * (1 - fy) + (data[q + 2]! * (1 - fx) + data[q + 5]! * fx) * fy;
            continue;
          }
          // at or beyond the image's edge: a neighbour outside is black
          const in00 = x0 >= 0 && y0 >= 0 && x0 < sw && y0 < sh;
          const in10 = x0 + 1 >= 0 && y0 >= 0 && x0 + 1 < sw && y0 < sh;
          const in01 = x0 >= 0 && y0 + 1 >= 0 && x0 < sw && y0 + 1 < sh;
          const in11 = x0 + 1 >= 0 && y0 + 1 >= 0 && x0 + 1 < sw && y0 + 1 < sh;
          for (let c = 0; c < 3; c++) {
            const p00 = in00 ? data[(y0 * sw + x0) * 3 + c]! : 0;
            const p10 = in10 ? data[(y0 * sw + x0 + 1) * 3 + c]! : 0;
            const p01 = in01 ? data[((y0 + 1) * sw + x0) * 3 + c]! : 0;
            const p11 = in11 ? data[((y0 + 1) * sw + x0 + 1) * 3 + c]! : 0;
            const val = (p00 * (1 - fx) + p10 * fx) * (1 - fy) + (p01 * (1 - fx) + p11 * fx) * fy;
            if (c === 0) a0 += val;
            else if (c === 1) a1 += val;
            else a2 += val;
          }
        }
      }
      out[o] = Math.round(a0 / kk);
      out[o + 1] = Math.round(a1 / kk);
      out[o + 2] = Math.round(a2 / kk);
    }
  }
  return out;
}

/**
 * warpAffine's single-sample case for an affine without rotation (x' = a u + c, y' = d v + f): the source
 * column and its weight depend on u alone and the row on v alone, so they are worked out once per column and
 * row. Same arithmetic per pixel as the general loop, so the same bytes (segment.ts's scaled copy for
 * growing, the detector's square crops).
 */
function warpAxisAligned(data: Uint8Array, sw: number, sh: number, a: number, c: number, d: number, f: number, out: Uint8Array, width: number, height: number): void {
  // per column: the source column, its weight, and whether it and the next column are inside the image
  // (a pixel outside is black, as in the general loop; its index is never read)
  const colX0 = new Int32Array(width), colFx = new Float64Array(width), colIn = new Uint8Array(width);
  for (let u = 0; u < width; u++) {
    const x = a * u + c;
    const x0 = Math.floor(x);
    colFx[u] = x - x0;
    colIn[u] = (x0 >= 0 && x0 < sw ? 1 : 0) | (x0 + 1 >= 0 && x0 + 1 < sw ? 2 : 0);
    colX0[u] = x0;
  }
  let o = 0;
  for (let v = 0; v < height; v++) {
    const y = d * v + f;
    const y0 = Math.floor(y);
    const fy = y - y0, gy = 1 - fy;
    const in0 = y0 >= 0 && y0 < sh, in1 = y0 + 1 >= 0 && y0 + 1 < sh;
    const r0 = y0 * sw * 3, r1 = r0 + sw * 3;
    for (let u = 0; u < width; u++, o += 3) {
      const fx = colFx[u]!, gx = 1 - fx;
      const m = colIn[u]!;
      const c0 = colX0[u]! * 3;
      if (in0 && in1 && m === 3) {
        const p = r0 + c0, q = r1 + c0;
        out[o] = Math.round((data[p]! * gx + data[p + 3]! * fx) * gy + (data[q]! * gx + data[q + 3]! * fx) * fy);
        out[o + 1] = Math.round((data[p + 1]! * gx + data[p + 4]! * fx) * gy + (data[q + 1]! * gx + data[q + 4]! * fx) * fy);
        out[o + 2] = Math.round((data[p + 2]! * gx + data[p + 5]! * fx) * gy + (data[q + 2]! * gx + data[q + 5]! * fx) * fy);
        continue;
      }
      // at the image's edge: a missing neighbour is black, as in the general loop
      const a00 = in0 && (m & 1) !== 0, a10 = in0 && (m & 2) !== 0, a01 = in1 && (m & 1) !== 0, a11 = in1 && (m & 2) !== 0;
      for (let ch = 0; ch < 3; ch++) {
        const p00 = a00 ? data[r0 + c0 + ch]! : 0;
        const p10 = a10 ? data[r0 + c0 + 3 + ch]! : 0;
        const p01 = a01 ? data[r1 + c0 + ch]! : 0;
        const p11 = a11 ? data[r1 + c0 + 3 + ch]! : 0;
        out[o + ch] = Math.round((p00 * gx + p10 * fx) * gy + (p01 * gx + p11 * fx) * fy);
      }
    }
  }
}

/** An axis-aligned square crop of `box` enlarged by `scale` around its centre, as an out->src affine. */
export function squareCropAffine(box: Box, scale: number, size: number): Affine {
  const side = Math.max(box.width, box.height) * scale;
  const cx = box.x + box.width / 2;
  const cy = box.y + box.height / 2;
  const s = side / size;
  // output pixel centre u maps to cx - side/2 + (u + 0.5) * s
  return [s, 0, cx - side / 2 + 0.5 * s - 0.5, 0, s, cy - side / 2 + 0.5 * s - 0.5];
}

export function flipHorizontal(img: Uint8Array, width: number, height: number): Uint8Array {
  const out = new Uint8Array(img.length);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const s = (y * width + x) * 3;
      const d = (y * width + (width - 1 - x)) * 3;
      out[d] = img[s]!; out[d + 1] = img[s + 1]!; out[d + 2] = img[s + 2]!;
    }
  }
  return out;
}

export function boundingBox(points: Point[]): Box {
  let x1 = Infinity, y1 = Infinity, x2 = -Infinity, y2 = -Infinity;
  for (const p of points) {
    x1 = Math.min(x1, p.x); y1 = Math.min(y1, p.y); x2 = Math.max(x2, p.x); y2 = Math.max(y2, p.y);
  }
  return { x: x1, y: y1, width: x2 - x1, height: y2 - y1 };
}
