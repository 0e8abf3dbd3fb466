/**
 * What faceflow's converters of face-api's TF.js weights share (issue 11): the weights manifest decoded as
 * TF.js's `io.decodeWeights` decodes it (uint8/uint16 -> float32 as q * scale + min), TF's 'same'/'valid'
 * padding arithmetic, and the HWIO -> OIHW filter transposes. Used by dlib-onnx.ts (the dlib ResNet) and
 * landmarks-onnx.ts (FaceLandmark68Net), so both conversions start from the float32 weights TF.js holds.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { FaceflowError } from '@faceflow/shared';

/**
 * face-api's mean RGB: subtracted, then divided by 255, by both its dlib ResNet
 * (FaceRecognitionNet.forwardInput) and its 68-point landmark net (FaceFeatureExtractor.forwardInput).
 */
export const FACE_API_MEAN_RGB: readonly [number, number, number] = [122.782, 117.001, 104.298];

/** A float32 array and its TF shape. */
export interface Weight {
  shape: number[];
  data: Float32Array;
}

interface ManifestWeight {
  name: string;
  shape: number[];
  dtype: string;
  quantization?: { dtype: string; scale?: number; min?: number };
}

/** What a manifest should hold, for the one-line error when it does not: e.g. ("dlib ResNet", "faceapi-recognition"). */
export interface ManifestKind {
  network: string;
  model: string;
}

/** The error for a manifest that is not what `kind` says, naming the command that restores it. */
export function notTheManifest(file: string, kind: ManifestKind, why: string): FaceflowError {
  return new FaceflowError('MODEL_LOAD', `${file} is not face-api's ${kind.network} weights manifest: ${why}; run \`faceflow models pull --force ${kind.model}\``);
}

/** Decodes a face-api weights manifest and its shards into float32 arrays, as tf.io.decodeWeights does. */
export async function decodeFaceApiWeights(manifestPath: string, kind: ManifestKind): Promise<Map<string, Weight>> {
  const bad = (why: string) => notTheManifest(manifestPath, kind, why);
  let manifest: Array<{ paths: string[]; weights: ManifestWeight[] }>;
  try {
    manifest = JSON.parse(await readFile(manifestPath, 'utf8'));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new FaceflowError('NOT_FOUND', `model file not found: ${manifestPath}`, { cause: e });
    throw bad(`not JSON (${(e as Error).message})`);
  }
  if (!Array.isArray(manifest)) throw bad('not an array of weight groups');
  const out = new Map<string, Weight>();
  for (const group of manifest) {
    const buf = Buffer.concat(await Promise.all(group.paths.map((p) => readFile(path.join(path.dirname(manifestPath), p)))));
    let offset = 0;
    for (const w of group.weights) {
      const n = w.shape.reduce((a, b) => a * b, 1);
      if (w.dtype !== 'float32') throw bad(`${w.name} is ${w.dtype}, expected float32`);
      const q = w.quantization;
      const data = new Float32Array(n);
      if (!q) {
        if (offset + 4 * n > buf.length) throw bad(`${w.name} runs past the end of the weights`);
        for (let i = 0; i < n; i++) data[i] = buf.readFloatLE(offset + 4 * i);
        offset += 4 * n;
      } else if ((q.dtype === 'uint8' || q.dtype === 'uint16') && typeof q.scale === 'number' && typeof q.min === 'number') {
        const size = q.dtype === 'uint8' ? 1 : 2;
        if (offset + size * n > buf.length) throw bad(`${w.name} runs past the end of the weights`);
        for (let i = 0; i < n; i++) {
          const v = size === 1 ? buf[offset + i]! : buf.readUInt16LE(offset + 2 * i);
          data[i] = v * q.scale + q.min;
        }
        offset += size * n;
      } else {
        throw bad(`${w.name} has a quantization faceflow does not read (${JSON.stringify(q)})`);
      }
      out.set(w.name, { shape: w.shape, data });
    }
  }
  return out;
}

/** TF's padding for one spatial axis: output size and (before, after); 'same' puts the odd pixel at the end. */
export function tfPadding(size: number, k: number, stride: number, pad: 'same' | 'valid'): { out: number; before: number; after: number } {
  if (pad === 'valid') return { out: Math.floor((size - k) / stride) + 1, before: 0, after: 0 };
  const out = Math.ceil(size / stride);
  const total = Math.max((out - 1) * stride + k - size, 0);
  return { out, before: Math.floor(total / 2), after: total - Math.floor(total / 2) };
}

/** HWIO [kh, kw, in, out] -> OIHW [out, in, kh, kw] */
export function toOihw(w: Weight): Float32Array {
  const [kh, kw, ci, co] = w.shape as [number, number, number, number];
  const out = new Float32Array(w.data.length);
  for (let y = 0; y < kh; y++)
    for (let x = 0; x < kw; x++)
      for (let i = 0; i < ci; i++)
        for (let o = 0; o < co; o++) out[((o * ci + i) * kh + y) * kw + x] = w.data[((y * kw + x) * ci + i) * co + o]!;
  return out;
}

/**
 * A TF depthwise filter [kh, kw, C, multiplier] -> ONNX's grouped-conv filter [C * multiplier, 1, kh, kw]
 * (group = C; output channel c * multiplier + m, as TF's depthwise_conv2d orders them).
 */
export function depthwiseToOihw(w: Weight): Float32Array {
  const [kh, kw, c, m] = w.shape as [number, number, number, number];
  const out = new Float32Array(w.data.length);
  for (let y = 0; y < kh; y++)
    for (let x = 0; x < kw; x++)
      for (let i = 0; i < c; i++)
        for (let j = 0; j < m; j++) out[((i * m + j) * kh + y) * kw + x] = w.data[((y * kw + x) * c + i) * m + j]!;
  return out;
}
