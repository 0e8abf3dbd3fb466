/**
 * Face embedder: the dlib ResNet of models/embedder.ts on ONNX Runtime (issue 11 step 1), from faceflow's
 * own conversion of face-api's TF.js weights (registry/dlib-onnx.ts, model `faceapi-recognition-onnx`).
 * The same folded float32 weights and the same graph, so the embeddings equal the TF.js ones to float
 * precision (models/dlib-resnet-onnx.test.ts measures it on LFW faces), and the engine keeps calling them
 * `faceapi-recognition`: galleries, calibration and decisions do not see which runtime made them.
 *
 * Input: 150x150 RGB dlib chips (alignEmbedderChip), batched; this wrapper subtracts the mean and divides
 * by 255 while it transposes to NCHW (face-api-input.ts: one pass it makes anyway), the graph's batch
 * dimension is symbolic.
 * Output: L2-normalised 128-d embeddings.
 */
import { FaceflowError, unitVector } from '@faceflow/shared';
import { batchSizeOf, OnnxModel, type OnnxSessionOptions } from '../runtime/onnx.js';
import { DLIB_DIM, DLIB_INPUT, DLIB_ONNX_OUTPUT } from '../registry/dlib-onnx.js';
import { faceApiNchw } from './face-api-input.js';

export interface DlibResNetOnnxConfig extends OnnxSessionOptions {
  modelPath: string;
  /** the registry name, for messages (default faceapi-recognition-onnx) */
  name?: string;
  /** chips per model call (default 16) */
  batchSize?: number;
}

export class DlibResNetOnnxEmbedder {
  private constructor(
    private model: OnnxModel | undefined,
    private readonly batchSize: number,
  ) {}

  static async load(config: DlibResNetOnnxConfig): Promise<DlibResNetOnnxEmbedder> {
    const batchSize = batchSizeOf(config.batchSize, 16, 'embedder');
    const opts: OnnxSessionOptions = {
      ...(config.provider ? { provider: config.provider } : {}),
      ...(config.threads !== undefined ? { threads: config.threads } : {}),
    };
    const model = await OnnxModel.load(config.modelPath, config.name ?? 'faceapi-recognition-onnx', { channels: 3, height: DLIB_INPUT, width: DLIB_INPUT }, opts);
    if (!model.batchable || !model.outputNames.includes(DLIB_ONNX_OUTPUT)) {
      await model.dispose();
      throw new FaceflowError('MODEL_LOAD', `${config.modelPath} is not faceflow's dlib ResNet conversion (symbolic batch, output "${DLIB_ONNX_OUTPUT}"); run \`faceflow models pull --force ${config.name ?? 'faceapi-recognition-onnx'}\``);
    }
    return new DlibResNetOnnxEmbedder(model, batchSize);
  }

  /** @param chips RGB chips of 150x150 @returns L2-normalised 128-d embeddings, one per chip */
  async run(chips: Uint8Array[]): Promise<Float32Array[]> {
    const model = this.model;
    if (!model) throw new FaceflowError('INTERNAL', 'embedder used after dispose()');
    const plane = DLIB_INPUT * DLIB_INPUT;
    chips.forEach((c, i) => {
      if (c.length !== plane * 3) throw new FaceflowError('INVALID_ARGUMENT', `chip ${i} has ${c.length} bytes, expected ${DLIB_INPUT}x${DLIB_INPUT}x3`);
    });
    const out: Float32Array[] = [];
    for (let start = 0; start < chips.length; start += this.batchSize) {
      const batch = chips.slice(start, start + this.batchSize);
      const x = faceApiNchw(batch, DLIB_INPUT);
      const res = (await model.run(x, [batch.length, 3, DLIB_INPUT, DLIB_INPUT]))[DLIB_ONNX_OUTPUT]!;
      for (let n = 0; n < batch.length; n++) {
        out.push(unitVector(res.data.subarray(n * DLIB_DIM, (n + 1) * DLIB_DIM)));
      }
    }
    return out;
  }

  async dispose(): Promise<void> {
    const m = this.model;
    this.model = undefined;
    await m?.dispose();
  }
}
