/**
 * Face quality: one score in [0, 1] per face, from four components each in [0, 1], so that a tiny, blurred,
 * profile or doubtful face can be refused before it is enrolled or named.
 *
 *   size       s = clamp((iod - 8) / (32 - 8), 0, 1), iod = the distance between the eye centres in image
 *              pixels (68 landmarks 36-41 and 42-47). 8 px is where landmarks stop being meaningful; at 32 px
 *              (a face of roughly 80 px) the aligned chip no longer gains from more pixels.
 *   sharpness  s = v / (v + 20), v = the variance of the 3x3 Laplacian (0 1 0 / 1 -4 1 / 0 1 0) over the
 *              central 60% of the aligned 150 px grey chip (the chip the embedder sees, so a small face
 *              upscaled to it counts as blurred). On LFW's 250 px JPEGs v is 15..125 (5th..95th percentile,
 *              median 45: s = 0.69); the same images blurred by a 2.5 px Gaussian give v = 2..6 (s = 0.1..0.2).
 *   pose       s = max(0, 1 - (yaw / 60 deg)^2) * max(0, 1 - (pitch / 45 deg)^2); roll is reported but not
 *              scored, since alignment removes it. Angles come from the face mesh's 3-D points when given,
 *              else are estimated from the 68 landmarks (see `poseFromLandmarks`).
 *   detector   s = the detector's score (0 for a face that was not detected but assumed, 1 for a face
 *              declared by the caller).
 *
 *   quality = size * sharpness * pose * detector: any component at 0 gives 0, and each one scales the others
 *   (a geometric mean was tried and dropped: it let a badly blurred face through at ~0.56).
 *
 *   Default floor 0.15 (DEFAULT_QUALITY_FLOOR), chosen on the 300 LFW Part Labels images: it refuses the 8
 *   faces the detector missed (detector 0) and 2 more, and 280 of the same 300 images blurred by a 2.5 px
 *   Gaussian (LFW: median quality 0.48, 5th percentile 0.21; blurred: median 0.10).
 */
import { FaceflowError } from '@faceflow/shared';
import { alignDlibChip } from './align.js';
import type { Point, RgbImage } from '../image/geometry.js';

export interface Pose {
  /** degrees; positive: the face turns towards the image's right */
  yaw: number;
  /** degrees; positive: the face looks down */
  pitch: number;
  /** degrees; positive: the eye line slopes down towards the image's right */
  roll: number;
  source: 'mesh' | 'landmarks';
}

export interface FaceQuality {
  /** the combined score in [0, 1] */
  score: number;
  components: { size: number; sharpness: number; pose: number; detector: number };
  /** the raw measurements behind the components */
  measures: { interocularPx: number; laplacianVariance: number; pose: Pose; detectorScore: number };
}

export { DEFAULT_QUALITY_FLOOR } from '../match/quality-floor.js';

const clamp01 = (v: number): number => Math.max(0, Math.min(1, v));
const DEG = 180 / Math.PI;

function centroid(points: Point[]): Point {
  let x = 0, y = 0;
  for (const p of points) { x += p.x; y += p.y; }
  return { x: x / points.length, y: y / points.length };
}

/**
 * Pose from the 68 landmarks, an estimate (no 3-D model): in the face's frame (x along the eye line),
 *   yaw   = atan(a / 1.1), a = (dR - dL) / (dR + dL), dL and dR the distances across the face from the nose
 *           tip (30) to the jaw's ends (0 and 16); for a head turned by t with the nose tip in front of the
 *           jaw's ends by k x half the jaw's width, a = k tan t. k = 1.1 is the least-squares fit of this
 *           estimate to the mesh's yaw on the 300 LFW Part Labels images (correlation 0.99);
 *   pitch = atan((r - 0.33) / 0.35), r = (nose tip below the eye line) / (chin below the eye line); 0.33 is
 *           the median r on the same (mostly frontal) images and 0.35 matches the spread of the mesh's
 *           pitch there (correlation 0.9): a rough estimate;
 *   roll  = the eye line's angle.
 * Expect errors of 10-15 degrees; the mesh-based pose is better.
 */
export function poseFromLandmarks(landmarks68: Point[]): Pose {
  if (landmarks68.length !== 68) throw new FaceflowError('INVALID_ARGUMENT', `poseFromLandmarks needs 68 landmarks, got ${landmarks68.length}`);
  const le = centroid(landmarks68.slice(36, 42));
  const re = centroid(landmarks68.slice(42, 48));
  const roll = Math.atan2(re.y - le.y, re.x - le.x);
  const c = Math.cos(roll), s = Math.sin(roll);
  const mid = { x: (le.x + re.x) / 2, y: (le.y + re.y) / 2 };
  const f = (p: Point): Point => ({ x: c * (p.x - mid.x) + s * (p.y - mid.y), y: -s * (p.x - mid.x) + c * (p.y - mid.y) });
  const nose = f(landmarks68[30]!);
  const left = f(landmarks68[0]!);
  const right = f(landmarks68[16]!);
  const chin = f(landmarks68[8]!);
  const dL = Math.abs(nose.x - left.x);
  const dR = Math.abs(right.x - nose.x);
  const a = dL + dR > 0 ? (dR - dL) / (dR + dL) : 0;
  // nose nearer the image-right jaw end (dR small): the face turns towards the image's right
  const yaw = -Math.atan(a / 1.1) * DEG;
  const r = chin.y > 0 ? nose.y / chin.y : 0.33;
  const pitch = Math.atan((r - 0.33) / 0.35) * DEG;
  return { yaw, pitch, roll: roll * DEG, source: 'landmarks' };
}

/**
 * Pose from the 468-point mesh's 3-D points (x, y in image pixels, z relative depth in the same scale):
 * yaw from the line between the cheek points at ear level (234, 454) in the x-z plane, pitch from the line
 * forehead (10) - chin (152) in the y-z plane, roll from the outer eye corners (33, 263).
 */
export function poseFromMesh(mesh: Array<Point & { z: number }>): Pose {
  if (mesh.length < 468) throw new FaceflowError('INVALID_ARGUMENT', `poseFromMesh needs the 468-point mesh, got ${mesh.length}`);
  const a = mesh[33]!, b = mesh[263]!;
  const roll = Math.atan2(b.y - a.y, b.x - a.x);
  const c = Math.cos(roll), s = Math.sin(roll);
  const rot = (p: Point & { z: number }): { x: number; y: number; z: number } => ({ x: c * p.x + s * p.y, y: -s * p.x + c * p.y, z: p.z });
  const l = rot(mesh[234]!), r = rot(mesh[454]!);
  const top = rot(mesh[10]!), bottom = rot(mesh[152]!);
  // turning towards the image's right brings the image-left cheek (234) nearer the camera (smaller z)
  const yaw = Math.atan2(r.z - l.z, r.x - l.x) * DEG;
  // looking down brings the forehead nearer the camera than the chin
  const pitch = Math.atan2(bottom.z - top.z, bottom.y - top.y) * DEG;
  return { yaw, pitch, roll: roll * DEG, source: 'mesh' };
}

/** Variance of the 3x3 Laplacian over the central `central` share of a grey image. */
export function laplacianVariance(grey: Float32Array | Uint8Array, width: number, height: number, central = 0.6): number {
  const m = Math.max(1, Math.floor(((1 - central) / 2) * Math.min(width, height)));
  let n = 0, sum = 0, sq = 0;
  for (let y = m; y < height - m; y++) {
    for (let x = m; x < width - m; x++) {
      const k = y * width + x;
      const v = grey[k - width]! + grey[k + width]! + grey[k - 1]! + grey[k + 1]! - 4 * grey[k]!;
      sum += v;
      sq += v * v;
      n++;
    }
  }
  if (n === 0) return 0;
  const mean = sum / n;
  return sq / n - mean * mean;
}

export interface QualityFace {
  score: number;
  landmarks: Point[];
}

export interface QualityOptions {
  /** the mesh's 3-D points, for a better pose */
  mesh?: Array<Point & { z: number }>;
}

/** The quality of one face of `image` (see the module comment for the formula). */
export function faceQuality(image: RgbImage, face: QualityFace, options: QualityOptions = {}): FaceQuality {
  if (face.landmarks.length !== 68) throw new FaceflowError('INVALID_ARGUMENT', `faceQuality needs 68 landmarks, got ${face.landmarks.length}`);
  const le = centroid(face.landmarks.slice(36, 42));
  const re = centroid(face.landmarks.slice(42, 48));
  const iod = Math.hypot(re.x - le.x, re.y - le.y);
  const size = 150;
  const chip = alignDlibChip(image, face.landmarks, size, 0.25);
  const grey = new Float32Array(size * size);
  for (let k = 0; k < grey.length; k++) grey[k] = 0.299 * chip[3 * k]! + 0.587 * chip[3 * k + 1]! + 0.114 * chip[3 * k + 2]!;
  const lapVar = laplacianVariance(grey, size, size, 0.6);
  const pose = options.mesh ? poseFromMesh(options.mesh) : poseFromLandmarks(face.landmarks);
  const components = {
    size: clamp01((iod - 8) / (32 - 8)),
    sharpness: lapVar / (lapVar + 20),
    pose: Math.max(0, 1 - (pose.yaw / 60) ** 2) * Math.max(0, 1 - (pose.pitch / 45) ** 2),
    detector: clamp01(face.score),
  };
  const score = components.size * components.sharpness * components.pose * components.detector;
  return { score, components, measures: { interocularPx: iod, laplacianVariance: lapVar, pose, detectorScore: face.score } };
}

/** Throws LOW_QUALITY when `quality` is under `floor`, naming the weakest component. */
export function assertQuality(quality: FaceQuality, floor: number, what = 'face'): void {
  if (!(floor >= 0 && floor <= 1)) throw new FaceflowError('INVALID_ARGUMENT', `quality floor must be in [0, 1], got ${floor}`);
  if (quality.score >= floor) return;
  const [weakest, value] = Object.entries(quality.components).sort((a, b) => a[1] - b[1])[0]!;
  throw new FaceflowError(
    'LOW_QUALITY',
    `${what} quality ${quality.score.toFixed(2)} is under the floor ${floor} (weakest: ${weakest} ${value.toFixed(2)}; eyes ${quality.measures.interocularPx.toFixed(0)} px apart, sharpness ${quality.measures.laplacianVariance.toFixed(0)}, yaw ${quality.measures.pose.yaw.toFixed(0)}°, pitch ${quality.measures.pose.pitch.toFixed(0)}°, detector ${quality.measures.detectorScore.toFixed(2)})`,
    { details: { score: quality.score, floor, components: quality.components } },
  );
}
