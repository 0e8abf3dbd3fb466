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

export const LANDMARK_INPUT = 112;

export interface LandmarkConfig {
  /** face-api `face_landmark_68_model-weights_manifest.json` */
  manifestPath: string;
  /** crops per model call (default 32) */
  batchSize?: number;
}

export class Landmark68 {
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
      batch.forEach((c, i) => {
        if (c.length !== LANDMARK_INPUT * LANDMARK_INPUT * 3) {
          throw new FaceflowError('INVALID_ARGUMENT', `crop ${start + i} has ${c.length} bytes, expected ${LANDMARK_INPUT}x${LANDMARK_INPUT}x3`);
        }
      });
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
      for (let b = 0; b < batch.length; b++) {
        const pts: Array<{ x: number; y: number }> = [];
        for (let i = 0; i < 68; i++) {
          pts.push({ x: values[b * 136 + 2 * i]! * LANDMARK_INPUT, y: values[b * 136 + 2 * i + 1]! * LANDMARK_INPUT });
        }
        result.push(pts);
      }
    }
    return result;
  }

  dispose(): void {
    this.net?.dispose();
    this.net = undefined;
  }
}
