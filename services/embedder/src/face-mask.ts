/**
 * The face outline the embedder attaches to each Face message (`mask`), so that whoever later shows or keeps a
 * picture of the frame can hide the face along it without running a model again.
 *
 * Methods (FACEFLOW_EMBEDDER_MASK):
 *   - `landmarks` (default): the 68-point jaw line closed by the brows raised towards the hairline
 *     (engine `landmarkPolygon`, 27 points). No model: the landmarks are already there, so it costs
 *     microseconds per face.
 *   - `none`: no mask in the message.
 * The face-mesh outline (`faceflow segment`'s default method, tighter at the forehead and on profiles) is not
 * offered here: it is a second model at ~14 ms per face, and the engine pool (worker threads) does not run the
 * mesh; wiring it means a segmenter in each pool worker.
 */
import { type Point } from '@faceflow/engine';
import { landmarkPolygon } from '@faceflow/engine/segment';
import type { FaceMaskPolygon } from '@faceflow/shared';

export const EMBEDDER_MASK_METHODS = ['none', 'landmarks'] as const;
export type EmbedderMaskMethod = (typeof EMBEDDER_MASK_METHODS)[number];

const round1 = (v: number): number => Math.round(v * 10) / 10;

/** The mask of a face with 68 landmarks (frame pixels, 0.1 px), or undefined for `none` or other landmark sets. */
export function faceMaskPolygon(landmarks68: readonly Point[], method: EmbedderMaskMethod): FaceMaskPolygon | undefined {
  if (method === 'none' || landmarks68.length !== 68) return undefined;
  const polygon = landmarkPolygon([...landmarks68]).map((p): [number, number] => [round1(p.x), round1(p.y)]);
  // a degenerate landmark set (NaN from a failed fit) must not fail the whole Face at the schema
  return polygon.every(([x, y]) => Number.isFinite(x) && Number.isFinite(y)) ? { method: 'landmarks', polygon } : undefined;
}
