/**
 * The JSON views of detection and identification results that `faceflow detect | encode | identify` print and
 * a library user would want as they are (rounded; an embedding only when asked), and the detection overlay
 * (issue 13: out of the CLI).
 */
import type { IdentifyResult } from '../match/decide.js';
import type { RgbImage } from '../image/geometry.js';
import { boxJson, pointsJson, roundTo, writeRgbImage } from '../image/output.js';
import type { DetectedFace } from './engine.js';

export function detectedFaceJson(f: DetectedFace, withEmbedding = false): Record<string, unknown> {
  return {
    box: boxJson(f.box),
    score: roundTo(f.score),
    keypoints: pointsJson(f.keypoints),
    landmarks: pointsJson(f.landmarks),
    ...(withEmbedding && f.embedding ? { embedding: Array.from(f.embedding, (v) => roundTo(v, 6)) } : {}),
  };
}

/** Boxes, 68 landmarks and scores drawn over `image`, written to `out` (png, jpg or webp). */
export async function writeDetectionOverlay(image: RgbImage, faces: DetectedFace[], out: string): Promise<void> {
  const stroke = Math.max(2, Math.round(Math.max(image.width, image.height) / 400));
  const shapes = faces.map((f) => {
    const r = `<rect x="${f.box.x}" y="${f.box.y}" width="${f.box.width}" height="${f.box.height}" fill="none" stroke="#00ff66" stroke-width="${stroke}"/>`;
    const pts = f.landmarks.map((p) => `<circle cx="${p.x}" cy="${p.y}" r="${stroke}" fill="#ff3355"/>`).join('');
    const label = `<text x="${f.box.x}" y="${Math.max(12, f.box.y - 4)}" font-size="${6 * stroke + 6}" fill="#00ff66" font-family="sans-serif">${f.score.toFixed(2)}</text>`;
    return r + pts + label;
  });
  await writeRgbImage(image, out, `<svg xmlns="http://www.w3.org/2000/svg" width="${image.width}" height="${image.height}">${shapes.join('')}</svg>`);
}

export function identifiedFaceJson(face: Pick<DetectedFace, 'box'>, r: IdentifyResult): Record<string, unknown> {
  return {
    identity: r.identity,
    distance: roundTo(r.distance),
    nearest: r.nearest,
    secondDistance: r.secondDistance === null ? null : roundTo(r.secondDistance),
    reason: r.reason,
    box: boxJson(face.box),
  };
}
