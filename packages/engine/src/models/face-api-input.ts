/**
 * The input of face-api's networks on ONNX Runtime (the dlib ResNet, dlib-resnet-onnx.ts; the 68-point
 * landmarks, landmarks-onnx.ts): square RGB images, transposed to one NCHW float32 batch while each value
 * becomes (x - FACE_API_MEAN_RGB) / 255, rounded to float32 at each step as TF.js computes it (face-api's
 * normalize, then div(255)), so the ONNX graphs see the TF.js wrappers' tensors bit for bit.
 */
import { FACE_API_MEAN_RGB } from '../registry/face-api-weights.js';

// float32, as TF.js holds the mean tensor
const MEAN = FACE_API_MEAN_RGB.map(Math.fround) as [number, number, number];

/** @param images RGB images of side x side pixels (sizes checked by the caller) @returns [N, 3, side, side] */
export function faceApiNchw(images: readonly Uint8Array[], side: number): Float32Array {
  const plane = side * side;
  const x = new Float32Array(images.length * 3 * plane);
  images.forEach((img, n) => {
    const base = n * 3 * plane;
    for (let c = 0; c < 3; c++) {
      const m = MEAN[c]!;
      const o = base + c * plane;
      for (let p = 0; p < plane; p++) x[o + p] = Math.fround(img[3 * p + c]! - m) / 255;
    }
  });
  return x;
}
