/**
 * Outline geometry: the face's outline from the 468-point mesh (its convex hull, the FACE_OVAL loop) or from
 * the 68 iBUG landmarks (the jaw line closed by the raised eyebrows), and the polygon helpers the colour
 * samples and growth regions are built from.
 */
import { FaceflowError } from '@faceflow/shared';
import type { Point } from '../image/geometry.js';

/** MediaPipe FACEMESH_FACE_OVAL as a closed loop: 10 (forehead top), clockwise in the image, 152 (chin) ... */
export const FACE_OVAL: readonly number[] = [
  10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377,
  152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109,
];
/** positions in FACE_OVAL of 454 and 234, the widest points (level with the ears' tragus) */
const OVAL_JAW_START = 8;
const OVAL_JAW_END = 28;

/** The face oval polygon from a 468-point mesh, image pixels. */
export function faceOvalPolygon(mesh: Point[]): Point[] {
  if (mesh.length < 468) throw new FaceflowError('INVALID_ARGUMENT', `faceOvalPolygon needs the 468-point mesh, got ${mesh.length} points`);
  return FACE_OVAL.map((i) => ({ x: mesh[i]!.x, y: mesh[i]!.y }));
}

/**
 * The mesh's outline: the convex hull of all 468 points. On a frontal face it is the face oval (the oval's
 * points are the hull's); on a profile it also takes in the nose and lips, which stick out of the silhouette
 * that FACE_OVAL traces on the canonical, frontal face.
 */
export function meshOutline(mesh: Point[]): Point[] {
  if (mesh.length < 468) throw new FaceflowError('INVALID_ARGUMENT', `meshOutline needs the 468-point mesh, got ${mesh.length} points`);
  return convexHull(mesh.slice(0, 468));
}

/** Andrew's monotone chain; counter-clockwise in a y-down image, first point not repeated. */
export function convexHull(points: Point[]): Point[] {
  const p = points.map((q) => ({ x: q.x, y: q.y })).sort((a, b) => a.x - b.x || a.y - b.y);
  if (p.length < 3) return p;
  const cross = (o: Point, a: Point, b: Point): number => (a.x - o.x) * (b.y - o.y) - (a.y - o.y) * (b.x - o.x);
  const lower: Point[] = [];
  for (const q of p) {
    while (lower.length >= 2 && cross(lower[lower.length - 2]!, lower[lower.length - 1]!, q) <= 0) lower.pop();
    lower.push(q);
  }
  const upper: Point[] = [];
  for (let i = p.length - 1; i >= 0; i--) {
    const q = p[i]!;
    while (upper.length >= 2 && cross(upper[upper.length - 2]!, upper[upper.length - 1]!, q) <= 0) upper.pop();
    upper.push(q);
  }
  return [...lower.slice(0, -1), ...upper.slice(0, -1)];
}

/** The jaw line of the mesh's oval, from the image-right ear level (454) through the chin to the image-left one (234). */
export function meshJawLine(mesh: Point[]): Point[] {
  return FACE_OVAL.slice(OVAL_JAW_START, OVAL_JAW_END + 1).map((i) => ({ x: mesh[i]!.x, y: mesh[i]!.y }));
}

export interface LandmarkPolygonOptions {
  /**
   * how far the eyebrows are raised towards the hairline, as a fraction of the eyebrow-to-chin distance
   * (default 0.4; in an average face the forehead is about half that distance, and hair often hides its top)
   */
  foreheadRaise?: number;
}

/** Face polygon from the 68 iBUG landmarks: jaw line 0..16, then the brows 26..17 raised along the face's up axis. */
export function landmarkPolygon(landmarks68: Point[], options: LandmarkPolygonOptions = {}): Point[] {
  if (landmarks68.length !== 68) throw new FaceflowError('INVALID_ARGUMENT', `landmarkPolygon needs 68 landmarks, got ${landmarks68.length}`);
  const raise = options.foreheadRaise ?? 0.4;
  const brows = landmarks68.slice(17, 27);
  const browMid = mean(brows);
  const chin = landmarks68[8]!;
  // the face's up axis: from the chin to the brows' centre
  const ux = browMid.x - chin.x;
  const uy = browMid.y - chin.y;
  const poly: Point[] = landmarks68.slice(0, 17).map((p) => ({ x: p.x, y: p.y }));
  for (let i = 26; i >= 17; i--) {
    const p = landmarks68[i]!;
    poly.push({ x: p.x + ux * raise, y: p.y + uy * raise });
  }
  return poly;
}

/** The jaw line 0..16 of the 68 landmarks. */
export function landmarkJawLine(landmarks68: Point[]): Point[] {
  return landmarks68.slice(0, 17).map((p) => ({ x: p.x, y: p.y }));
}

/** The centroid of the points (their mean). */
export function mean(points: Point[]): Point {
  let x = 0, y = 0;
  for (const p of points) { x += p.x; y += p.y; }
  return { x: x / points.length, y: y / points.length };
}

/** Scales a polygon about its centroid, in the frame rotated by `angle`, by (sx, sy). */
export function scalePolygon(poly: Point[], angle: number, sx: number, sy: number): Point[] {
  const c = Math.cos(angle), s = Math.sin(angle);
  const m = mean(poly);
  return poly.map((p) => {
    const u = c * (p.x - m.x) + s * (p.y - m.y);
    const v = -s * (p.x - m.x) + c * (p.y - m.y);
    return { x: m.x + c * u * sx - s * v * sy, y: m.y + s * u * sx + c * v * sy };
  });
}

