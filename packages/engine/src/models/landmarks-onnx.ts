/**
 * 68-point facial landmarks on ONNX Runtime (issue 11, pipeline latency): face-api's FaceLandmark68Net from
 * faceflow's own conversion of its TF.js weights (registry/landmarks-onnx.ts, model
 * `faceapi-landmarks68-onnx`). The same weights and graph as Landmark68 (models/landmarks.ts), so the points
 * equal the TF.js ones to float precision (landmarks-onnx.test.ts measures it on real faces) and the
 * aligner and everything after it see no difference.
 *
 * Input: 112x112 RGB crops (cropSquare), batched; the wrapper normalises and transposes them to NCHW
 * (face-api-input.ts). Output: per crop, 68 points in crop pixels, as Landmark68 returns them.
 */
import { FaceflowError } from '@faceflow/shared';
import { batchSizeOf, OnnxModel, type OnnxSessionOptions } from '../runtime/onnx.js';
import { LANDMARK68_ONNX_OUTPUT } from '../registry/landmarks-onnx.js';
import { faceApiNchw } from './face-api-input.js';
import { checkLandmarkCrops, cropPoints, LANDMARK_INPUT, type LandmarkModel } from './landmarks.js';

export interface LandmarkOnnxConfig extends OnnxSessionOptions {
  modelPath: string;
  /** the registry name, for messages (default faceapi-landmarks68-onnx) */
  name?: string;
  /** crops per model call (default 32, as Landmark68) */
  batchSize?: number;
}

export class Landmark68Onnx implements LandmarkModel {
  private constructor(
    private model: OnnxModel | undefined,
    private readonly batchSize: number,
  ) {}

  static async load(config: LandmarkOnnxConfig): Promise<Landmark68Onnx> {
    const batchSize = batchSizeOf(config.batchSize, 32, 'landmarks');
    const name = config.name ?? 'faceapi-landmarks68-onnx';
    const opts: OnnxSessionOptions = {
      ...(config.provider ? { provider: config.provider } : {}),
      ...(config.threads !== undefined ? { threads: config.threads } : {}),
    };
    const model = await OnnxModel.load(config.modelPath, name, { channels: 3, height: LANDMARK_INPUT, width: LANDMARK_INPUT }, opts);
    if (!model.batchable || !model.outputNames.includes(LANDMARK68_ONNX_OUTPUT)) {
      await model.dispose();
      throw new FaceflowError('MODEL_LOAD', `${config.modelPath} is not faceflow's 68-point landmark conversion (symbolic batch, output "${LANDMARK68_ONNX_OUTPUT}"); run \`faceflow models pull --force ${name}\``);
    }
    return new Landmark68Onnx(model, batchSize);
  }

  /** @param crops RGB crops of 112x112 @returns per crop, 68 points in crop pixels */
  async run(crops: Uint8Array[]): Promise<Array<Array<{ x: number; y: number }>>> {
    const model = this.model;
    if (!model) throw new FaceflowError('INTERNAL', 'landmark model used after dispose()');
    checkLandmarkCrops(crops);
    const result: Array<Array<{ x: number; y: number }>> = [];
    for (let start = 0; start < crops.length; start += this.batchSize) {
      const batch = crops.slice(start, start + this.batchSize);
      const values = (await model.run(faceApiNchw(batch, LANDMARK_INPUT), [batch.length, 3, LANDMARK_INPUT, LANDMARK_INPUT]))[LANDMARK68_ONNX_OUTPUT]!.data;
      // face-api's postProcess for a square input (FaceLandmark68NetBase: * inputSize, - 0 padding,
      // / width), in float32 as TF.js computes it, so that cropPoints sees the values Landmark68 sees
      for (let i = 0; i < values.length; i++) values[i] = Math.fround(Math.fround(values[i]! * LANDMARK_INPUT) / LANDMARK_INPUT);
      for (let b = 0; b < batch.length; b++) result.push(cropPoints(values, b));
    }
    return result;
  }

  async dispose(): Promise<void> {
    const m = this.model;
    this.model = undefined;
    await m?.dispose();
  }
}
