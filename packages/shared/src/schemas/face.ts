/**
 * Face v1: one detected face of one frame, with its embedding; the output of the embedder.
 * Keyed by cameraId. `embedding` is L2-normalised (checked, ± 1e-3). Coordinates are pixels of the
 * original frame. `cropRef` optionally points at a stored crop (never the crop itself).
 *
 * `mask` (optional, added in v1 without a bump: see codec.ts) is the face's outline as a closed polygon in
 * frame pixels, and the method that made it, so that whoever later shows or stores a picture of the frame
 * can hide the face along its outline (a box leaks hair, ears and jaw lines) without running a model again.
 */
import type { Box } from '../geometry.js';
import { defineJsonSchema } from './codec.js';
import { ID_PATTERN } from './frame.js';
import { FieldReader, readEmbedding } from './validate.js';


export interface Face {
  frameId: string;
  cameraId: string;
  captureTs: number;
  /** Index of the face within its frame, 0-based. */
  faceIndex: number;
  box: Box;
  /** Landmark points [x, y] (e.g. 5 or 68 of them); may be empty. */
  landmarks: [number, number][];
  /** Detector confidence, 0..1. */
  score: number;
  /** Quality for recognition (size, blur, pose), 0..1. */
  quality: number;
  embedding: number[];
  /** Name (and version) of the embedding model; embeddings of different models are not comparable. */
  model: string;
  cropRef?: string;
  /** The face's outline in frame pixels (see FaceMaskPolygon). */
  mask?: FaceMaskPolygon;
}

export const FACE_MASK_METHODS = ['landmarks', 'mesh'] as const;
export type FaceMaskMethod = (typeof FACE_MASK_METHODS)[number];

/**
 * A face outline: `landmarks` is the 68-point jaw line closed by the brows raised towards the hairline (27
 * points), `mesh` the outline of the 468-point face mesh (at most 468 points). Closed: the last point joins
 * the first, which is not repeated.
 */
export interface FaceMaskPolygon {
  method: FaceMaskMethod;
  polygon: [number, number][];
}

/** Most points a mask polygon may have: the mesh outline's 468, with room to spare, and no more (a message stays small). */
export const MAX_MASK_POINTS = 512;

export function readBox(r: FieldReader): Box {
  return {
    x: r.number('x'),
    y: r.number('y'),
    width: r.number('width', { gt: 0 }),
    height: r.number('height', { gt: 0 }),
  };
}

function readPoints(r: FieldReader, key: string, opts: { min?: number; max: number }): [number, number][] {
  const arr = r.array(key, opts);
  return arr.map((p, i) => {
    if (!Array.isArray(p) || p.length !== 2) throw r.fail(`${key}[${i}]`, 'must be a pair [x, y]');
    const [x, y] = p as unknown[];
    if (typeof x !== 'number' || !Number.isFinite(x) || typeof y !== 'number' || !Number.isFinite(y)) {
      throw r.fail(`${key}[${i}]`, 'must hold two finite numbers');
    }
    return [x, y];
  });
}

export const FaceSchema = defineJsonSchema<Face>('face', 1, (r) => {
  const face: Face = {
    frameId: r.string('frameId', { max: 256 }),
    cameraId: r.string('cameraId', { max: 256, pattern: ID_PATTERN }),
    captureTs: r.timestamp('captureTs'),
    faceIndex: r.number('faceIndex', { integer: true, min: 0 }),
    box: readBox(r.object('box')),
    landmarks: readPoints(r, 'landmarks', { max: 1000 }),
    score: r.number('score', { min: 0, max: 1 }),
    quality: r.number('quality', { min: 0, max: 1 }),
    embedding: readEmbedding(r, 'embedding'),
    model: r.string('model', { max: 128 }),
  };
  const cropRef = r.optionalString('cropRef', { max: 1024 });
  if (cropRef !== undefined) face.cropRef = cropRef;
  if (r.has('mask')) {
    const m = r.object('mask');
    face.mask = { method: m.oneOf('method', FACE_MASK_METHODS), polygon: readPoints(m, 'polygon', { min: 3, max: MAX_MASK_POINTS }) };
  }
  return face;
});
