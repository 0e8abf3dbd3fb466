/**
 * The projection head: a small TF.js layers model on top of the frozen base embedding, trained with the
 * triplet loss (train/trainer.ts; the fit's own parts, initialisation and writing the folder, are train/head.ts)
 * and applied by the engine after the base embedding (EngineConfig.head).
 *  - linear: y = W x + b
 *  - mlp:    y = W x + b + W2 relu(W1 x + b1) + b2   (a linear path plus a one-hidden-layer residual)
 * The output is L2-normalised here (l2Normalise), not inside the saved model, so the folder holds only
 * standard Dense/Add layers that any TF.js can load.
 *
 * A head folder: model.json + weights.bin (TF.js layers format) and head.json (HeadMeta: what base model it
 * expects, its recalibrated thresholds, how it was trained, and the sha256 of weights.bin).
 *
 * Two thresholds, as the shipped calibrations (match/calibration.ts) have: `threshold`, accuracy-optimal on the
 * validation identities, for verify (1:1); `distanceAtFar1e3`, the distance at a false-accept rate of 1e-3 on
 * their impostor pairs (eval/far.ts), for identify (1:N) and the pipeline. A head written before faceflow recorded
 * `distanceAtFar1e3` still loads: its identify threshold falls back to its accuracy-optimal `threshold`
 * (headIdentifyThreshold; looser than a FAR-1e-3 one, so the CLI warns; retrain or pass --threshold).
 * `readHeadMetaSync` reads head.json alone and loads no model (the matcher service takes its name and thresholds).
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { FaceflowError } from '@faceflow/shared';
import { tf } from '../runtime/tf.js';
import { loadLayersModelFromFile } from '../runtime/io.js';
import { headEmbedderName, headIdentifyThreshold, readHeadMeta, type HeadMeta } from '../registry/head-meta.js';
import type { LayersModel, Tensor2D } from '@tensorflow/tfjs';

// The head's folder format and names live in head-meta.ts, which imports no TF.js, so the matcher can read
// a head's thresholds without a model runtime (issue 13).
export * from '../registry/head-meta.js';

/** Rows of `x` divided by their L2 norm. */
export function l2Normalise(x: Tensor2D): Tensor2D {
  return tf.tidy(() => tf.div(x, tf.maximum(tf.norm(x, 'euclidean', 1, true), 1e-12)) as Tensor2D);
}

/** The head's normalised output for a [n, inputDim] batch. */
export function applyHead(model: LayersModel, x: Tensor2D, training = false): Tensor2D {
  return tf.tidy(() => l2Normalise(model.apply(x, { training }) as Tensor2D));
}

export interface ProjectionHeadConfig {
  /** the head folder (head.json, model.json, weights.bin) */
  dir: string;
  /** vectors per model call (default 256) */
  batchSize?: number;
}

/** A trained head, loaded from its folder: vectors of the base embedder in, L2-normalised vectors out. */
export class ProjectionHead {
  private constructor(private model: LayersModel | undefined, readonly meta: HeadMeta, private readonly batchSize: number) {}

  static async load(config: ProjectionHeadConfig): Promise<ProjectionHead> {
    const meta = await readHeadMeta(config.dir);
    const weightsFile = path.join(config.dir, 'weights.bin');
    let weights: Buffer;
    try {
      weights = await readFile(weightsFile);
    } catch (e) {
      throw new FaceflowError('MODEL_LOAD', `weights file missing: ${weightsFile}`, { cause: e });
    }
    const sha = createHash('sha256').update(weights).digest('hex');
    if (sha !== meta.weightsSha256) {
      throw new FaceflowError('MODEL_INTEGRITY', `${weightsFile} does not match head.json (sha256 ${sha.slice(0, 12)}..., expected ${meta.weightsSha256.slice(0, 12)}...)`);
    }
    const model = await loadLayersModelFromFile(path.join(config.dir, 'model.json'));
    const inShape = model.inputs[0]?.shape;
    const outShape = model.outputs[0]?.shape;
    if (model.inputs.length !== 1 || inShape?.length !== 2 || inShape[1] !== meta.inputDim || outShape?.length !== 2 || outShape[1] !== meta.dim) {
      model.dispose();
      throw new FaceflowError('MODEL_LOAD', `${config.dir}: the model maps [${inShape}] to [${outShape}], head.json says ${meta.inputDim} -> ${meta.dim}`);
    }
    return new ProjectionHead(model, meta, config.batchSize ?? 256);
  }

  get inputDim(): number {
    return this.meta.inputDim;
  }

  get dim(): number {
    return this.meta.dim;
  }

  /** the accuracy-optimal threshold (verify, 1:1) */
  get threshold(): number {
    return this.meta.threshold;
  }

  /** the identify (1:N) threshold: distance at FAR 1e-3, or `threshold` for an older head (headIdentifyThreshold) */
  get distanceAtFar1e3(): number {
    return headIdentifyThreshold(this.meta).threshold;
  }

  /** The embedder name of base + this head: galleries record it and never mix two heads' vectors. */
  embedderName(baseName: string): string {
    return headEmbedderName(baseName, this.meta);
  }

  async run(vectors: Float32Array[]): Promise<Float32Array[]> {
    const model = this.model;
    if (!model) throw new FaceflowError('INTERNAL', 'projection head used after dispose()');
    const d = this.meta.inputDim;
    const out: Float32Array[] = [];
    for (let start = 0; start < vectors.length; start += this.batchSize) {
      const batch = vectors.slice(start, start + this.batchSize);
      const flat = new Float32Array(batch.length * d);
      batch.forEach((v, i) => {
        if (v.length !== d) throw new FaceflowError('INVALID_ARGUMENT', `vector ${start + i} has ${v.length} values, the head takes ${d}`);
        flat.set(v, i * d);
      });
      const result = tf.tidy(() => applyHead(model, tf.tensor2d(flat, [batch.length, d])));
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
