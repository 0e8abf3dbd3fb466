/**
 * A user's own embedding model, by path: a TF.js graph model or layers model (e.g. a Keras FaceNet,
 * ArcFace or SFace converted with tensorflowjs_converter), with its input size and normalisation declared
 * in config (or in its registry entry), since a model.json does not say how its input was scaled.
 * Input: aligned RGB chips of `inputSize` (NHWC); output: the model's vector, L2-normalised here.
 */
import { FaceflowError } from '@faceflow/shared';
import { tf } from '../runtime/tf.js';
import { loadGraphModelFromFile, loadLayersModelFromFile } from '../runtime/io.js';
import type { GraphModel, LayersModel, Tensor } from '@tensorflow/tfjs';

export interface GraphEmbedderConfig {
  /** model.json of the model */
  path: string;
  format: 'tfjs-graph' | 'tfjs-layers';
  /** square input side in pixels (FaceNet 160, ArcFace/SFace 112, the notebook's OpenFace 96) */
  inputSize: number;
  /** per-channel (x - mean) / std on 0..255 RGB, e.g. FaceNet [127.5]*3 / [128]*3 */
  mean: [number, number, number];
  std: [number, number, number];
  channelOrder?: 'rgb' | 'bgr';
  batchSize?: number;
  /**
   * the embedding's size, to pick the embedding among several outputs (e.g. faceres also outputs age and
   * gender); without it, the widest [batch, n] output
   */
  dim?: number;
}

type Prediction = Tensor | Tensor[] | Record<string, Tensor>;

/** The [batch, n] output that is the embedding: of size `dim` if given, else the widest. */
function pickEmbedding(y: Prediction, dim: number | undefined): Tensor {
  const outs = Array.isArray(y) ? y : 'shape' in y && Array.isArray((y as Tensor).shape) ? [y as Tensor] : Object.values(y);
  const rank2 = outs.filter((t) => t.shape.length === 2);
  const pick = dim !== undefined ? rank2.find((t) => t.shape[1] === dim) : rank2.sort((a, b) => b.shape[1]! - a.shape[1]!)[0];
  if (!pick) throw new FaceflowError('MODEL_LOAD', `no [batch, ${dim ?? 'n'}] output among [${outs.map((t) => `[${t.shape}]`).join(', ')}]`);
  return pick;
}

export class GraphEmbedder {
  private constructor(private model: GraphModel | LayersModel | undefined, private readonly cfg: GraphEmbedderConfig, readonly dim: number) {}

  static async load(config: GraphEmbedderConfig): Promise<GraphEmbedder> {
    if (!Number.isInteger(config.inputSize) || config.inputSize < 16 || config.inputSize > 1024) {
      throw new FaceflowError('INVALID_CONFIG', `embedder inputSize must be an integer in [16, 1024], got ${config.inputSize}`);
    }
    if (config.std.some((s) => !(s > 0))) throw new FaceflowError('INVALID_CONFIG', 'embedder std values must be > 0');
    const model = config.format === 'tfjs-layers' ? await loadLayersModelFromFile(config.path) : await loadGraphModelFromFile(config.path);
    // one dry run tells the output size and proves that the declared input fits the model
    let dim: number;
    try {
      const probe = tf.tidy(() => pickEmbedding(model.predict(tf.zeros([1, config.inputSize, config.inputSize, 3])) as Prediction, config.dim));
      if (probe.shape.length !== 2) {
        probe.dispose();
        throw new Error(`output has shape [${probe.shape}], expected [batch, dim]`);
      }
      dim = probe.shape[1]!;
      probe.dispose();
    } catch (e) {
      model.dispose();
      throw new FaceflowError('MODEL_LOAD', `${config.path} does not run on ${config.inputSize}x${config.inputSize}x3 input: ${(e as Error).message}`, { cause: e });
    }
    return new GraphEmbedder(model, config, dim);
  }

  async run(chips: Uint8Array[]): Promise<Float32Array[]> {
    const model = this.model;
    if (!model) throw new FaceflowError('INTERNAL', 'embedder used after dispose()');
    const size = this.cfg.inputSize;
    const batchSize = this.cfg.batchSize ?? 16;
    const out: Float32Array[] = [];
    for (let start = 0; start < chips.length; start += batchSize) {
      const batch = chips.slice(start, start + batchSize);
      const flat = new Uint8Array(batch.length * size * size * 3);
      batch.forEach((c, i) => {
        if (c.length !== size * size * 3) throw new FaceflowError('INVALID_ARGUMENT', `chip ${start + i} has ${c.length} bytes, expected ${size * size * 3}`);
        flat.set(c, i * size * size * 3);
      });
      const result = tf.tidy(() => {
        let x = tf.tensor4d(flat, [batch.length, size, size, 3], 'int32').toFloat();
        if (this.cfg.channelOrder === 'bgr') x = tf.reverse(x, -1);
        x = tf.div(tf.sub(x, tf.tensor1d(this.cfg.mean)), tf.tensor1d(this.cfg.std));
        const e = pickEmbedding(model.predict(x) as Prediction, this.dim);
        return tf.div(e, tf.maximum(tf.norm(e, 'euclidean', 1, true), 1e-12));
      });
      try {
        const data = (await result.data()) as Float32Array;
        for (let i = 0; i < batch.length; i++) out.push(data.slice(i * this.dim, (i + 1) * this.dim));
      } finally {
        result.dispose();
      }
    }
    return out;
  }

  dispose(): void {
    this.model?.dispose();
    this.model = undefined;
  }
}
