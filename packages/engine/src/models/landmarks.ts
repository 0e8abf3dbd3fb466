/**
 * 68-point facial landmarks (the iBUG 300-W layout dlib uses): face-api's FaceLandmark68Net, a small
 * depthwise-separable CNN on 112x112 crops, outputting 68 (x, y) in [0, 1] of the crop.
 * Crops are square, cut around a face box by the caller's affine, so the same code serves a first pass
 * from the detector's box and a refining pass from the previous landmarks.
 */
import { FaceflowError } from '@faceflow/shared';
import { tf } from '../runtime/tf.js';
import { loadWeightMapFromFile } from '../runtime/io.js';
import { faceApi, type FaceApiLandmarkNet } from '../runtime/face-api.js';
import { LANDMARK68_INPUT } from '../registry/landmarks-onnx.js';

/** the side of the net's square input (the converted graph's too) */
export const LANDMARK_INPUT = LANDMARK68_INPUT;

export interface LandmarkConfig {
  /** face-api `face_landmark_68_model-weights_manifest.json` */
  manifestPath: string;
  /** crops per model call (default 32) */
  batchSize?: number;
}

/**
 * The contract of the 68-point landmark wrappers (Landmark68 on TF.js, Landmark68Onnx on ONNX Runtime): the
 * engine and the aligner see only this, so the runtime that places the points makes no other difference.
 */
export interface LandmarkModel {
  /** @param crops RGB crops of LANDMARK_INPUT x LANDMARK_INPUT pixels @returns per crop, 68 points in crop pixels */
  run(crops: Uint8Array[]): Promise<Array<Array<{ x: number; y: number }>>>;
  dispose(): void | Promise<void>;
}

/** Refuses a crop that is not LANDMARK_INPUT x LANDMARK_INPUT RGB, naming it (index `offset + i`). */
export function checkLandmarkCrops(crops: readonly Uint8Array[], offset = 0): void {
  crops.forEach((c, i) => {
    if (c.length !== LANDMARK_INPUT * LANDMARK_INPUT * 3) {
      throw new FaceflowError('INVALID_ARGUMENT', `crop ${offset + i} has ${c.length} bytes, expected ${LANDMARK_INPUT}x${LANDMARK_INPUT}x3`);
    }
  });
}

/** The 68 points of crop `b` from the net's 136 values per crop in [0, 1] of the crop: crop pixels. */
export function cropPoints(values: Float32Array, b: number): Array<{ x: number; y: number }> {
  const pts: Array<{ x: number; y: number }> = [];
  for (let i = 0; i < 68; i++) pts.push({ x: values[b * 136 + 2 * i]! * LANDMARK_INPUT, y: values[b * 136 + 2 * i + 1]! * LANDMARK_INPUT });
  return pts;
}

export class Landmark68 implements LandmarkModel {
  private constructor(private net: FaceApiLandmarkNet | undefined, private readonly batchSize: number) {}

  static async load(config: LandmarkConfig): Promise<Landmark68> {
    const weights = await loadWeightMapFromFile(config.manifestPath);
    const net = new (faceApi().FaceLandmark68Net)();
    try {
      net.loadFromWeightMap(weights);
    } catch (e) {
      Object.values(weights).forEach((t) => t.dispose());
      throw new FaceflowError('MODEL_LOAD', `landmark weights do not fit FaceLandmark68Net: ${(e as Error).message}`, { cause: e });
    }
    return new Landmark68(net, config.batchSize ?? 32);
  }

  /**
   * @param crops RGB crops of LANDMARK_INPUT x LANDMARK_INPUT pixels
   * @returns per crop, 68 points in crop pixels
   */
  async run(crops: Uint8Array[]): Promise<Array<Array<{ x: number; y: number }>>> {
    const net = this.net;
    if (!net) throw new FaceflowError('INTERNAL', 'landmark model used after dispose()');
    const result: Array<Array<{ x: number; y: number }>> = [];
    for (let start = 0; start < crops.length; start += this.batchSize) {
      const batch = crops.slice(start, start + this.batchSize);
      checkLandmarkCrops(batch, start);
      const out = tf.tidy(() => {
        const tensors = batch.map((c) => tf.tensor3d(c, [LANDMARK_INPUT, LANDMARK_INPUT, 3], 'int32'));
        return net.forwardInput(new (faceApi().NetInput)(tensors));
      });
      let values: Float32Array;
      try {
        values = (await out.data()) as Float32Array;
      } finally {
        out.dispose();
      }
      for (let b = 0; b < batch.length; b++) result.push(cropPoints(values, b));
    }
    return result;
  }

  dispose(): void {
    this.net?.dispose();
    this.net = undefined;
  }
}
