/**
 * `faceflow segment` as a library call: detect the faces of an image, segment each by a variant, and give
 * per face its box, polygon, COCO RLE mask, area and quality, rounded as the JSON shows them; optionally
 * write the overlay (masks tinted, outlines drawn) and the union mask as a PNG (issue 13: out of the CLI).
 */
import type { DetectedFace, FaceEngine } from '../recognize/engine.js';
import type { FaceQuality, QualityOptions } from '../recognize/quality.js';
import type { RgbImage } from '../image/geometry.js';
import { boxJson, pointsJson, roundTo, writeBytes, writeRgbImage } from '../image/output.js';
import { maskToPng, maskToRle, rleCountsToString, unionMasks } from './mask.js';
import type { FaceSegment } from './segment.js';
import { type SegVariant, type VariantSegmenters, segmentVariant } from './variants.js';

export interface SegmentImageTools extends VariantSegmenters {
  engine: Pick<FaceEngine, 'run'>;
  /** recognize/quality.ts faceQuality, given by the caller: segment/ sits below recognize/ in the layers */
  quality: (image: RgbImage, face: DetectedFace, options: QualityOptions) => FaceQuality;
}

export interface SegmentImageOptions {
  method: SegVariant;
  /** the image is a tight face crop: skip detection */
  wholeImageIsFace?: boolean;
  /** write the overlay here (png, jpg or webp) */
  overlay?: string;
  /** write the union of the masks here as a black-and-white PNG */
  mask?: string;
}

export interface SegmentedFaceJson {
  box: { x: number; y: number; width: number; height: number };
  score: number;
  method: SegVariant;
  meshScore?: number;
  polygon: number[][];
  rle: { size: [number, number]; counts: string };
  area: number;
  quality: { score: number; components: Record<string, number>; measures: Record<string, number | string> };
}

/** The image with every mask tinted green and every outline drawn in yellow, as an RGB copy and an SVG over it. */
export function segmentOverlay(image: RgbImage, segments: FaceSegment[]): { image: RgbImage; svg: string } {
  const tinted = new Uint8Array(image.data);
  const all = unionMasks(segments.map((s) => s.mask), image.width, image.height);
  for (let j = 0; j < all.h; j++) {
    for (let i = 0; i < all.w; i++) {
      if (!all.data[j * all.w + i]) continue;
      const o = ((all.y + j) * image.width + all.x + i) * 3;
      tinted[o] = (tinted[o]! + 0) >> 1;
      tinted[o + 1] = (tinted[o + 1]! + 255) >> 1;
      tinted[o + 2] = (tinted[o + 2]! + 102) >> 1;
    }
  }
  const stroke = Math.max(1, Math.round(Math.max(image.width, image.height) / 500));
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${image.width}" height="${image.height}">${segments
    .map((s) => `<polygon points="${s.polygon.map((p) => `${p.x.toFixed(1)},${p.y.toFixed(1)}`).join(' ')}" fill="none" stroke="#ffee00" stroke-width="${stroke}"/>`)
    .join('')}</svg>`;
  return { image: { data: tinted, width: image.width, height: image.height }, svg };
}

/** One face's JSON row: box, score, polygon, RLE, area and its quality (with the mesh's pose when there is one). */
export function segmentedFaceJson(image: RgbImage, face: DetectedFace, s: FaceSegment, method: SegVariant, quality: SegmentImageTools['quality']): SegmentedFaceJson {
  const q = quality(image, face, s.mesh ? { mesh: s.mesh } : {});
  const rle = maskToRle(s.mask);
  return {
    box: boxJson(face.box),
    score: roundTo(face.score),
    method,
    ...(s.meshScore !== undefined ? { meshScore: roundTo(s.meshScore) } : {}),
    polygon: pointsJson(s.polygon),
    rle: { size: rle.size, counts: rleCountsToString(rle.counts) },
    area: s.mask.data.reduce((a, b) => a + b, 0),
    quality: {
      score: roundTo(q.score),
      components: Object.fromEntries(Object.entries(q.components).map(([k, v]) => [k, roundTo(v)])),
      measures: {
        interocularPx: roundTo(q.measures.interocularPx, 1),
        laplacianVariance: roundTo(q.measures.laplacianVariance, 1),
        yaw: roundTo(q.measures.pose.yaw, 1),
        pitch: roundTo(q.measures.pose.pitch, 1),
        roll: roundTo(q.measures.pose.roll, 1),
        poseFrom: q.measures.pose.source,
        detectorScore: roundTo(q.measures.detectorScore),
      },
    },
  };
}

/** Detects, segments and describes every face of `image`; writes the overlay, then the mask, when asked. */
export async function segmentImage(tools: SegmentImageTools, image: RgbImage, options: SegmentImageOptions): Promise<SegmentedFaceJson[]> {
  const [faces] = await tools.engine.run([image], { embed: false, wholeImageIsFace: options.wholeImageIsFace === true });
  const segments = await segmentVariant(tools, options.method, image, faces!);
  if (options.overlay) {
    const o = segmentOverlay(image, segments);
    await writeRgbImage(o.image, options.overlay, o.svg);
  }
  if (options.mask) await writeBytes(options.mask, await maskToPng(unionMasks(segments.map((s) => s.mask), image.width, image.height)));
  return faces!.map((f, i) => segmentedFaceJson(image, f, segments[i]!, options.method, tools.quality));
}
