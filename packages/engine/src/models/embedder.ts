/**
 * Face embedder: dlib's ResNet-34-style metric network (dlib_face_recognition_resnet_model_v1, King 2017,
 * trained with a pair-wise hinge loss to 128-d; 99.38% on LFW as published), in the TF.js port that
 * @vladmandic/face-api ships as `face_recognition_model` (weights stored 8-bit quantised), on TF.js.
 * The same network runs on ONNX Runtime from faceflow's conversion of these weights (dlib-onnx.ts).
 *
 * We run the network ourselves instead of through face-api: each dlib "conv + bias + affine(scale) + relu"
 * is folded into one fused conv (W' = W * s, b' = b * s + t; registry/dlib-onnx.ts readDlibResNet, shared
 * with the ONNX conversion), which cuts three element-wise passes per layer and measures faster on the
 * WebAssembly backend (BENCHMARKS.md). Output is L2-normalised.
 *
 * Input: 150x150 RGB face chips aligned as dlib's get_face_chip_details(shape, 150, 0.25) does.
 */
import { FaceflowError } from '@faceflow/shared';
import { tf } from '../runtime/tf.js';
import { DLIB_DIM, DLIB_INPUT, DLIB_MEAN_RGB, readDlibResNet, type FoldedConv as FoldedWeights } from '../registry/dlib-onnx.js';
import type { Tensor, Tensor1D, Tensor4D } from '@tensorflow/tfjs';

export const EMBED_INPUT = DLIB_INPUT;
export const EMBED_DIM = DLIB_DIM;

interface FusedConv {
  filter: Tensor4D;
  bias: Tensor1D;
}
interface Residual {
  conv1: FusedConv;
  conv2: FusedConv;
}

export interface EmbedderConfig {
  /** face-api `face_recognition_model-weights_manifest.json` */
  manifestPath: string;
  /** chips per model call (default 16) */
  batchSize?: number;
}

export class DlibResNetEmbedder {
  private constructor(
    private params: { stem: FusedConv; blocks: Array<{ p: Residual; down: boolean }>; fc: Tensor } | undefined,
    private readonly batchSize: number,
  ) {}

  static async load(config: EmbedderConfig): Promise<DlibResNetEmbedder> {
    const net = await readDlibResNet(config.manifestPath);
    const created: Tensor[] = [];
    const tensors = (p: FoldedWeights): FusedConv => {
      const c = {
        filter: tf.tensor4d(p.filter.data, p.filter.shape as [number, number, number, number]),
        bias: tf.tensor1d(p.bias.data),
      };
      created.push(c.filter, c.bias);
      return c;
    };
    try {
      const stem = tensors(net.stem);
      const blocks = net.blocks.map((b) => ({ p: { conv1: tensors(b.conv1), conv2: tensors(b.conv2) }, down: b.down }));
      const fc = tf.tensor2d(net.fc.data, net.fc.shape as [number, number]);
      created.push(fc);
      return new DlibResNetEmbedder({ stem, blocks, fc }, config.batchSize ?? 16);
    } catch (e) {
      created.forEach((t) => t.dispose());
      throw e;
    }
  }

  /** @param chips RGB chips of 150x150 @returns L2-normalised 128-d embeddings, one per chip */
  async run(chips: Uint8Array[]): Promise<Float32Array[]> {
    const params = this.params;
    if (!params) throw new FaceflowError('INTERNAL', 'embedder used after dispose()');
    const out: Float32Array[] = [];
    for (let start = 0; start < chips.length; start += this.batchSize) {
      const batch = chips.slice(start, start + this.batchSize);
      const flat = new Uint8Array(batch.length * EMBED_INPUT * EMBED_INPUT * 3);
      batch.forEach((c, i) => {
        if (c.length !== EMBED_INPUT * EMBED_INPUT * 3) {
          throw new FaceflowError('INVALID_ARGUMENT', `chip ${start + i} has ${c.length} bytes, expected ${EMBED_INPUT}x${EMBED_INPUT}x3`);
        }
        flat.set(c, i * EMBED_INPUT * EMBED_INPUT * 3);
      });
      const result = tf.tidy(() => {
        const x = tf.tensor4d(flat, [batch.length, EMBED_INPUT, EMBED_INPUT, 3], 'int32').toFloat();
        const normalised = tf.div(tf.sub(x, tf.tensor1d([...DLIB_MEAN_RGB])), 255) as Tensor4D;
        const conv = (input: Tensor4D, p: FusedConv, stride: 1 | 2, relu: boolean, pad: 'same' | 'valid' = 'same'): Tensor4D =>
          tf.fused.conv2d({ x: input, filter: p.filter, strides: stride, pad, bias: p.bias, activation: relu ? 'relu' : 'linear' });
        let h = conv(normalised, params.stem, 2, true, 'valid');
        h = tf.maxPool(h, 3, 2, 'valid');
        for (const { p, down } of params.blocks) {
          if (!down) {
            const y = conv(conv(h, p.conv1, 1, true), p.conv2, 1, false);
            h = tf.relu(tf.add(y, h)) as Tensor4D;
            continue;
          }
          // dlib's downsampling block: the shortcut is a 2x2 average pool, zero-padded in channels
          let y = conv(conv(h, p.conv1, 2, true, 'valid'), p.conv2, 1, false);
          let pooled = tf.avgPool(h, 2, 2, 'valid') as Tensor4D;
          if (pooled.shape[1] !== y.shape[1] || pooled.shape[2] !== y.shape[2]) {
            // the strided 'valid' conv is one short of the pool on odd sizes: pad as face-api does
            y = tf.pad(y, [[0, 0], [0, pooled.shape[1] - y.shape[1]], [0, pooled.shape[2] - y.shape[2]], [0, 0]]);
          }
          if (pooled.shape[3] !== y.shape[3]) pooled = tf.pad(pooled, [[0, 0], [0, 0], [0, 0], [0, y.shape[3] - pooled.shape[3]]]);
          h = tf.relu(tf.add(pooled, y)) as Tensor4D;
        }
        const pooled = tf.mean(h, [1, 2]);
        const emb = tf.matMul(pooled, params.fc);
        return tf.div(emb, tf.norm(emb, 'euclidean', 1, true));
      });
      try {
        const data = (await result.data()) as Float32Array;
        for (let i = 0; i < batch.length; i++) out.push(data.slice(i * EMBED_DIM, (i + 1) * EMBED_DIM));
      } finally {
        result.dispose();
      }
    }
    return out;
  }

  dispose(): void {
    if (!this.params) return;
    const { stem, blocks, fc } = this.params;
    for (const c of [stem, ...blocks.flatMap((b) => [b.p.conv1, b.p.conv2])]) {
      c.filter.dispose();
      c.bias.dispose();
    }
    fc.dispose();
    this.params = undefined;
  }
}
