/**
 * Face alignment to the embedder's canonical chip, following dlib's get_face_chip_details(shape, size,
 * padding) (dlib/image_transforms/interpolation.h): the 51 inner landmarks (iBUG points 17..67: brows,
 * nose, eyes, mouth) are mapped by a least-squares similarity transform onto dlib's mean face shape, scaled
 * into a `size` chip with `padding` (0.25 for the face recognition ResNet, as in dlib's
 * dnn_face_recognition_ex.cpp). The jaw line (0..16) is left out, as dlib does.
 */
import { type Affine, type Point, type RgbImage, similarityTransform, squareCropAffine, warpAffine, type Box } from '../image/geometry.js';

// dlib's mean face shape for iBUG points 17..67, in the unit square (interpolation.h).
const MEAN_FACE_X = [
  0.000213256, 0.0752622, 0.18113, 0.29077, 0.393397, 0.586856, 0.689483, 0.799124, 0.904991, 0.98004, 0.490127,
  0.490127, 0.490127, 0.490127, 0.36688, 0.426036, 0.490127, 0.554217, 0.613373, 0.121737, 0.187122, 0.265825,
  0.334606, 0.260918, 0.182743, 0.645647, 0.714428, 0.793132, 0.858516, 0.79751, 0.719335, 0.254149, 0.340985,
  0.428858, 0.490127, 0.551395, 0.639268, 0.726104, 0.642159, 0.556721, 0.490127, 0.423532, 0.338094, 0.290379,
  0.428096, 0.490127, 0.552157, 0.689874, 0.553364, 0.490127, 0.42689,
];
const MEAN_FACE_Y = [
  0.106454, 0.038915, 0.0187482, 0.0344891, 0.0773906, 0.0773906, 0.0344891, 0.0187482, 0.038915, 0.106454,
  0.203352, 0.307009, 0.409805, 0.515625, 0.587326, 0.609345, 0.628106, 0.609345, 0.587326, 0.216423, 0.178758,
  0.179852, 0.231733, 0.245099, 0.244077, 0.231733, 0.179852, 0.178758, 0.216423, 0.244077, 0.245099, 0.780233,
  0.745405, 0.727388, 0.742578, 0.727388, 0.745405, 0.780233, 0.864805, 0.902192, 0.909281, 0.902192, 0.864805,
  0.784792, 0.778746, 0.785343, 0.778746, 0.784792, 0.824182, 0.831803, 0.824182,
];

/** The chip -> image affine for dlib's face chip of `size` pixels with `padding`. */
export function dlibChipAffine(landmarks68: Point[], size = 150, padding = 0.25): Affine {
  if (landmarks68.length !== 68) throw new Error(`dlib chip alignment needs 68 landmarks, got ${landmarks68.length}`);
  const from: Point[] = [];
  const to: Point[] = [];
  for (let i = 17; i < 68; i++) {
    from.push({
      x: ((padding + MEAN_FACE_X[i - 17]!) / (2 * padding + 1)) * size,
      y: ((padding + MEAN_FACE_Y[i - 17]!) / (2 * padding + 1)) * size,
    });
    to.push(landmarks68[i]!);
  }
  return similarityTransform(from, to);
}

export function alignDlibChip(image: RgbImage, landmarks68: Point[], size = 150, padding = 0.25): Uint8Array {
  return warpAffine(image, dlibChipAffine(landmarks68, size, padding), size, size);
}

/**
 * The ArcFace 5-point template in a 112x112 chip (InsightFace; OpenCV FaceRecognizerSF::alignCrop): the eye
 * on the image's left (the subject's right), the other eye, nose tip, left and right mouth corners.
 */
export const ARCFACE_TEMPLATE: readonly Point[] = [
  { x: 38.2946, y: 51.6963 },
  { x: 73.5318, y: 51.5014 },
  { x: 56.0252, y: 71.7366 },
  { x: 41.5493, y: 92.3655 },
  { x: 70.7299, y: 92.2041 },
];

/** The 5 template points from 68 iBUG landmarks: eye centres (36-41, 42-47), nose tip (30), mouth corners (48, 54). */
export function fivePointsFrom68(l: Point[]): Point[] {
  if (l.length !== 68) throw new Error(`5-point alignment from 68 landmarks needs 68, got ${l.length}`);
  const mean = (a: number, b: number): Point => {
    let x = 0;
    let y = 0;
    for (let i = a; i <= b; i++) {
      x += l[i]!.x;
      y += l[i]!.y;
    }
    return { x: x / (b - a + 1), y: y / (b - a + 1) };
  };
  return [mean(36, 41), mean(42, 47), l[30]!, l[48]!, l[54]!];
}

/** The chip -> image affine that puts the face's 5 points (from its 68 landmarks) on the ArcFace template. */
export function arcFaceChipAffine(landmarks68: Point[], size = 112): Affine {
  const k = size / 112;
  return similarityTransform(ARCFACE_TEMPLATE.map((p) => ({ x: p.x * k, y: p.y * k })), fivePointsFrom68(landmarks68));
}

/** A 112x112 chip with the face's 5 points on the ArcFace template (SFace's input). */
export function alignArcFaceChip(image: RgbImage, landmarks68: Point[], size = 112): Uint8Array {
  return warpAffine(image, arcFaceChipAffine(landmarks68, size), size, size);
}

/** A square crop around a box, for models that take an axis-aligned face crop (landmarks, whole-image faces). */
export function cropSquare(image: RgbImage, box: Box, scale: number, size: number): { pixels: Uint8Array; affine: Affine } {
  const affine = squareCropAffine(box, scale, size);
  return { pixels: warpAffine(image, affine, size, size), affine };
}

/**
 * The chip an embedder takes for a face with these 68 landmarks: ArcFace's 5-point template for an
 * arcface-aligned model (SFace), else dlib's chip with `padding`. The one rule: FaceEngine.alignChip and
 * openEngine's handle (a pool aligns in the calling thread) both use it (issue 11: a named aligner is right
 * for one embedder only).
 */
export function alignEmbedderChip(embedder: { chipSize: number; alignment?: 'dlib' | 'arcface' }, image: RgbImage, landmarks68: Point[], padding = 0.25): Uint8Array {
  return embedder.alignment === 'arcface' ? alignArcFaceChip(image, landmarks68, embedder.chipSize) : alignDlibChip(image, landmarks68, embedder.chipSize, padding);
}
