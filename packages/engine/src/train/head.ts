/**
 * Fitting a projection head (models/head.ts holds the head itself: its folder format and ProjectionHead): a
 * freshly initialised model, the weights kept and restored between epochs, and the folder written.
 *
 * Initialisation (seeded, ours, not TF.js's global one): W is the identity when dim == inputDim (the head
 * starts as the base embedding, so training can only move away from a known point), else a Gaussian random
 * projection (rows ~ N(0, 1/dim)); W1 is Glorot-uniform; W2 and every bias start at zero.
 */
import { createHash } from 'node:crypto';
import { mkdir, writeFile, rename } from 'node:fs/promises';
import path from 'node:path';
import { FaceflowError } from '@faceflow/shared';
import { tf } from '../runtime/tf.js';
import { Rng } from '../eval/rng.js';
import { HEAD_FORMAT, HEAD_KINDS, type HeadKind, type HeadMeta } from '../models/head.js';
import type { LayersModel, SymbolicTensor, io } from '@tensorflow/tfjs';

export interface HeadSpec {
  kind: HeadKind;
  inputDim: number;
  dim: number;
  /** hidden units of the mlp head (default 256) */
  hidden?: number;
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

