/**
 * Face embedder: SFace (Zhong et al. 2021, "SFace: Sigmoid-Constrained Hypersphere Loss for Robust Face
 * Recognition"; OpenCV Zoo's face_recognition_sface_2021dec_int8bq.onnx), on ONNX Runtime (issue 11).
 * Input: 112x112 RGB 0..255, NCHW, no mean subtraction, after a similarity warp of 5 landmarks onto the
 * ArcFace template (align.ts alignArcFaceChip), as OpenCV's FaceRecognizerSF::alignCrop + feature do.
 * Output `fc1`: 128 floats, L2-normalised here so that euclidean distance orders pairs as cosine does.
 * The graph's batch is fixed at 1: one call per chip.
 */
import { FaceflowError, unitVector } from '@faceflow/shared';
import { OnnxModel, type OnnxSessionOptions } from '../runtime/onnx.js';

export const SFACE_INPUT = 112;
export const SFACE_DIM = 128;

export interface SFaceConfig extends OnnxSessionOptions {
  modelPath: string;
  name?: string;
}

export class SFaceEmbedder {
  private constructor(private model: OnnxModel | undefined) {}

  static async load(config: SFaceConfig): Promise<SFaceEmbedder> {
    const opts: OnnxSessionOptions = {
      ...(config.provider ? { provider: config.provider } : {}),
      ...(config.threads !== undefined ? { threads: config.threads } : {}),
    };
    const model = await OnnxModel.load(config.modelPath, config.name ?? 'sface-2021dec-int8bq', { channels: 3, height: SFACE_INPUT, width: SFACE_INPUT }, opts);
    return new SFaceEmbedder(model);
  }

  /** @param chips RGB chips of 112x112 pixels (alignArcFaceChip) @returns L2-normalised 128-d embeddings */
  async run(chips: Uint8Array[]): Promise<Float32Array[]> {
    const model = this.model;
    if (!model) throw new FaceflowError('INTERNAL', 'embedder used after dispose()');
    const plane = SFACE_INPUT * SFACE_INPUT;
    const out: Float32Array[] = [];
    for (const [i, chip] of chips.entries()) {
      if (chip.length !== plane * 3) throw new FaceflowError('INVALID_ARGUMENT', `chip ${i} has ${chip.length} bytes, expected ${SFACE_INPUT}x${SFACE_INPUT}x3`);
      const x = new Float32Array(3 * plane);
      for (let p = 0; p < plane; p++) {
        x[p] = chip[3 * p]!;
        x[plane + p] = chip[3 * p + 1]!;
        x[2 * plane + p] = chip[3 * p + 2]!;
      }
      const res = await model.run(x, [1, 3, SFACE_INPUT, SFACE_INPUT]);
      const v = Object.values(res)[0]!.data;
      if (v.length !== SFACE_DIM) throw new FaceflowError('MODEL_LOAD', `SFace model ${model.path} gave ${v.length} values, expected ${SFACE_DIM}`);
      out.push(unitVector(v));
    }
    return out;
  }

  async dispose(): Promise<void> {
    const m = this.model;
    this.model = undefined;
    await m?.dispose();
  }
}
