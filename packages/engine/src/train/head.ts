/**
 * The projection head: a small TF.js layers model on top of the frozen base embedding, trained with the
 * triplet loss (trainer.ts) and applied by the engine after the base embedding (EngineConfig.head).
 *  - linear: y = W x + b
 *  - mlp:    y = W x + b + W2 relu(W1 x + b1) + b2   (a linear path plus a one-hidden-layer residual)
 * The output is L2-normalised here (l2Normalise), not inside the saved model, so the folder holds only
 * standard Dense/Add layers that any TF.js can load.
 *
 * Initialisation (seeded, ours, not TF.js's global one): W is the identity when dim == inputDim (the head
 * starts as the base embedding, so training can only move away from a known point), else a Gaussian random
 * projection (rows ~ N(0, 1/dim)); W1 is Glorot-uniform; W2 and every bias start at zero.
 *
 * A head folder: model.json + weights.bin (TF.js layers format) and head.json (HeadMeta: what base model it
 * expects, its recalibrated thresholds, how it was trained, and the sha256 of weights.bin).
 *
 * Two thresholds, as the shipped calibrations (calibration.ts) have: `threshold`, accuracy-optimal on the
 * validation identities, for verify (1:1); `distanceAtFar1e3`, the distance at a false-accept rate of 1e-3 on
 * their impostor pairs (far.ts), for identify (1:N) and the pipeline. A head written before faceflow recorded
 * `distanceAtFar1e3` still loads: its identify threshold falls back to its accuracy-optimal `threshold`
 * (headIdentifyThreshold; looser than a FAR-1e-3 one, so the CLI warns; retrain or pass --threshold).
 * `readHeadMetaSync` reads head.json alone and loads no model (the matcher service takes its name and thresholds);
 * head.json and the names it gives live in ../models/head-meta.ts, which imports no TF.js (issue 13: the matcher).
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile, writeFile, rename } from 'node:fs/promises';
import path from 'node:path';
import { FaceflowError } from '@faceflow/shared';
import { tf } from '../runtime/tf.js';
import { loadLayersModelFromFile } from '../runtime/io.js';
import { Rng } from './rng.js';
import { HEAD_FORMAT, HEAD_KINDS, headEmbedderName, headIdentifyThreshold, readHeadMeta, type HeadKind, type HeadMeta } from '../models/head-meta.js';
import type { LayersModel, Tensor2D, SymbolicTensor, io } from '@tensorflow/tfjs';

// re-exported: the head's file format was defined here before it moved (issue 13)
export * from '../models/head-meta.js';

export interface HeadSpec {
  kind: HeadKind;
  inputDim: number;
  dim: number;
  /** hidden units of the mlp head (default 256) */
  hidden?: number;
}

/** Rows of `x` divided by their L2 norm. */
export function l2Normalise(x: Tensor2D): Tensor2D {
  return tf.tidy(() => tf.div(x, tf.maximum(tf.norm(x, 'euclidean', 1, true), 1e-12)) as Tensor2D);
}

/** The head's normalised output for a [n, inputDim] batch. */
export function applyHead(model: LayersModel, x: Tensor2D, training = false): Tensor2D {
  return tf.tidy(() => l2Normalise(model.apply(x, { training }) as Tensor2D));
}

function checkSpec(spec: HeadSpec): Required<HeadSpec> {
  if (!(HEAD_KINDS as readonly string[]).includes(spec.kind)) {
    throw new FaceflowError('INVALID_ARGUMENT', `head must be one of ${HEAD_KINDS.join(', ')}, got "${spec.kind}"`);
  }
  const hidden = spec.hidden ?? 256;
  for (const [k, v] of [['inputDim', spec.inputDim], ['dim', spec.dim], ['hidden', hidden]] as const) {
    if (!Number.isInteger(v) || v < 2 || v > 4096) throw new FaceflowError('INVALID_ARGUMENT', `head ${k} must be an integer in [2, 4096], got ${v}`);
  }
  return { ...spec, hidden };
}

/** A freshly initialised head; the same seed gives the same weights, bit for bit. */
export function buildHeadModel(spec: HeadSpec, seed: number): LayersModel {
  const s = checkSpec(spec);
  const rng = new Rng(seed);
  const input = tf.input({ shape: [s.inputDim], name: 'base_embedding' });
  const proj = tf.layers.dense({ units: s.dim, useBias: true, name: 'proj' });
  let output = proj.apply(input) as SymbolicTensor;
  const init: Array<{ layer: string; values: Array<{ shape: number[]; data: Float32Array }> }> = [];
  const projKernel = new Float32Array(s.inputDim * s.dim);
  if (s.inputDim === s.dim) for (let i = 0; i < s.dim; i++) projKernel[i * s.dim + i] = 1;
  else for (let i = 0; i < projKernel.length; i++) projKernel[i] = rng.normal() / Math.sqrt(s.dim);
  init.push({ layer: 'proj', values: [{ shape: [s.inputDim, s.dim], data: projKernel }, { shape: [s.dim], data: new Float32Array(s.dim) }] });
  if (s.kind === 'mlp') {
    const hidden = tf.layers.dense({ units: s.hidden, activation: 'relu', useBias: true, name: 'hidden' });
    const residual = tf.layers.dense({ units: s.dim, useBias: true, name: 'residual' });
    const r = residual.apply(hidden.apply(input)) as SymbolicTensor;
    output = tf.layers.add({ name: 'sum' }).apply([output, r]) as SymbolicTensor;
    const limit = Math.sqrt(6 / (s.inputDim + s.hidden));
    const w1 = new Float32Array(s.inputDim * s.hidden);
    for (let i = 0; i < w1.length; i++) w1[i] = rng.uniform(-limit, limit);
    init.push(
      { layer: 'hidden', values: [{ shape: [s.inputDim, s.hidden], data: w1 }, { shape: [s.hidden], data: new Float32Array(s.hidden) }] },
      { layer: 'residual', values: [{ shape: [s.hidden, s.dim], data: new Float32Array(s.hidden * s.dim) }, { shape: [s.dim], data: new Float32Array(s.dim) }] },
    );
  }
  const model = tf.model({ inputs: input, outputs: output, name: 'faceflow_head' });
  for (const { layer, values } of init) {
    const tensors = values.map((v) => tf.tensor(v.data, v.shape));
    try {
      model.getLayer(layer).setWeights(tensors);
    } finally {
      tf.dispose(tensors);
    }
  }
  return model;
}

/** The weights of a model as plain arrays (for keeping the best epoch without holding tensors). */
export function snapshotWeights(model: LayersModel): Float32Array[] {
  return model.getWeights().map((w) => w.dataSync() as Float32Array).map((d) => d.slice());
}

export function restoreWeights(model: LayersModel, snapshot: Float32Array[]): void {
  const current = model.getWeights();
  const tensors = snapshot.map((d, i) => tf.tensor(d, current[i]!.shape));
  try {
    model.setWeights(tensors);
  } finally {
    tf.dispose(tensors);
  }
}

function joinWeightData(data: io.WeightData | undefined): Buffer {
  if (data === undefined) return Buffer.alloc(0);
  const parts = Array.isArray(data) ? data : [data];
  return Buffer.concat(parts.map((p) => Buffer.from(p)));
}

/**
 * Writes a head folder: model.json + weights.bin (TF.js layers format) and head.json. Returns the meta
 * as written (with weightsSha256 filled in).
 */
export async function saveHead(model: LayersModel, dir: string, meta: Omit<HeadMeta, 'format' | 'version' | 'weightsSha256' | 'normalise'>): Promise<HeadMeta> {
  let artifacts: io.ModelArtifacts | undefined;
  await model.save(
    tf.io.withSaveHandler(async (a) => {
      artifacts = a;
      return { modelArtifactsInfo: { dateSaved: new Date(0), modelTopologyType: 'JSON' } };
    }),
  );
  if (!artifacts) throw new FaceflowError('INTERNAL', 'the head model produced no artifacts');
  const weights = joinWeightData(artifacts.weightData);
  const modelJson = {
    format: 'layers-model',
    generatedBy: 'faceflow train',
    convertedBy: null,
    modelTopology: artifacts.modelTopology,
    weightsManifest: [{ paths: ['weights.bin'], weights: artifacts.weightSpecs ?? [] }],
  };
  const full: HeadMeta = {
    format: HEAD_FORMAT,
    version: 1,
    ...meta,
    normalise: 'l2',
    weightsSha256: createHash('sha256').update(weights).digest('hex'),
  };
  try {
    await mkdir(dir, { recursive: true });
    // write then rename, so that a reader never sees a half-written head
    const put = async (name: string, data: string | Buffer): Promise<void> => {
      const tmp = path.join(dir, `.${name}.tmp`);
      await writeFile(tmp, data);
      await rename(tmp, path.join(dir, name));
    };
    await put('weights.bin', weights);
    await put('model.json', `${JSON.stringify(modelJson)}\n`);
    await put('head.json', `${JSON.stringify(full, null, 2)}\n`);
  } catch (e) {
    throw new FaceflowError('INVALID_ARGUMENT', `cannot write the head to ${dir}: ${(e as Error).message}`, { cause: e });
  }
  return full;
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
