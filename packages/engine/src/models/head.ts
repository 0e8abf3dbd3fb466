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
 * their impostor pairs (train/far.ts), for identify (1:N) and the pipeline. A head written before faceflow recorded
 * `distanceAtFar1e3` still loads: its identify threshold falls back to its accuracy-optimal `threshold`
 * (headIdentifyThreshold; looser than a FAR-1e-3 one, so the CLI warns; retrain or pass --threshold).
 * `readHeadMetaSync` reads head.json alone and loads no model (the matcher service takes its name and thresholds).
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { FaceflowError } from '@faceflow/shared';
import { tf } from '../runtime/tf.js';
import { loadLayersModelFromFile } from '../runtime/io.js';
import type { FarCalibration } from '../train/far.js';
import type { LayersModel, Tensor2D } from '@tensorflow/tfjs';

export const HEAD_KINDS = ['linear', 'mlp'] as const;
export type HeadKind = (typeof HEAD_KINDS)[number];
export const HEAD_FORMAT = 'faceflow-projection-head';

export interface HeadMeta {
  format: typeof HEAD_FORMAT;
  version: 1;
  /** a name for people; the engine's embedder name adds the first 8 hex of weightsSha256 to it */
  name: string;
  /** the base embedder it was trained on (EmbedderInfo.name): the engine refuses any other */
  baseModel: string;
  kind: HeadKind;
  inputDim: number;
  dim: number;
  hidden?: number;
  normalise: 'l2';
  /** L2-distance decision threshold for the head's embeddings, recalibrated on the validation identities */
  threshold: number;
  thresholdSource: 'validation-identities' | 'training-identities';
  /**
   * the identify (1:N) threshold: the L2 distance at a false-accept rate of 1e-3 on the impostor pairs of the
   * same identities as `threshold` (never above it). Absent from heads written before it was recorded: see
   * headIdentifyThreshold for the fallback.
   */
  distanceAtFar1e3?: number;
  /** how distanceAtFar1e3 was measured (far.distance is before the cap at `threshold`) */
  far?: FarCalibration;
  weightsSha256: string;
  /** validation figures, the training configuration and whatever else the trainer records */
  validation?: Record<string, unknown>;
  training?: Record<string, unknown>;
}

/** Rows of `x` divided by their L2 norm. */
export function l2Normalise(x: Tensor2D): Tensor2D {
  return tf.tidy(() => tf.div(x, tf.maximum(tf.norm(x, 'euclidean', 1, true), 1e-12)) as Tensor2D);
}

/** The head's normalised output for a [n, inputDim] batch. */
export function applyHead(model: LayersModel, x: Tensor2D, training = false): Tensor2D {
  return tf.tidy(() => l2Normalise(model.apply(x, { training }) as Tensor2D));
}

export async function readHeadMeta(dir: string): Promise<HeadMeta> {
  const file = path.join(dir, 'head.json');
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new FaceflowError('NOT_FOUND', `no projection head at ${dir} (head.json not found)`, { cause: e });
  }
  return parseHeadMeta(text, file);
}

/** readHeadMeta, synchronously (for configuration checks at start-up); reads head.json only. */
export function readHeadMetaSync(dir: string): HeadMeta {
  const file = path.join(dir, 'head.json');
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new FaceflowError('NOT_FOUND', `no projection head at ${dir} (head.json not found)`, { cause: e });
  }
  return parseHeadMeta(text, file);
}

/** Parses and checks the text of a head.json (`file` names it in errors). */
export function parseHeadMeta(text: string, file: string): HeadMeta {
  let meta: HeadMeta;
  try {
    meta = JSON.parse(text) as HeadMeta;
  } catch (e) {
    throw new FaceflowError('MODEL_LOAD', `${file} is not valid JSON`, { cause: e });
  }
  if (meta?.format !== HEAD_FORMAT || meta.version !== 1) {
    throw new FaceflowError('MODEL_LOAD', `${file} is not a faceflow projection head (format "${String(meta?.format)}", version ${String(meta?.version)})`);
  }
  for (const k of ['name', 'baseModel', 'weightsSha256'] as const) {
    if (typeof meta[k] !== 'string' || meta[k] === '') throw new FaceflowError('MODEL_LOAD', `${file} lacks "${k}"`);
  }
  for (const k of ['inputDim', 'dim', 'threshold'] as const) {
    if (typeof meta[k] !== 'number' || !Number.isFinite(meta[k])) throw new FaceflowError('MODEL_LOAD', `${file} lacks a numeric "${k}"`);
  }
  const far = meta.distanceAtFar1e3;
  if (far !== undefined && (typeof far !== 'number' || !(far > 0 && far <= 2))) {
    throw new FaceflowError('MODEL_LOAD', `${file}: "distanceAtFar1e3" must be a distance in (0, 2], got ${JSON.stringify(far)}`);
  }
  return meta;
}

/**
 * The identify (1:N) threshold of a head: its `distanceAtFar1e3`; for a head written before that was recorded,
 * its accuracy-optimal `threshold` (`fallback` true: looser than a FAR-1e-3 threshold, so more strangers get
 * named; retrain the head, or pass an explicit threshold).
 */
export function headIdentifyThreshold(meta: Pick<HeadMeta, 'threshold' | 'distanceAtFar1e3'>): { threshold: number; fallback: boolean } {
  return meta.distanceAtFar1e3 !== undefined ? { threshold: meta.distanceAtFar1e3, fallback: false } : { threshold: meta.threshold, fallback: true };
}

/** The embedder name of base + head: galleries record it and never mix two heads' (or a head's and the base's) vectors. */
export function headEmbedderName(baseName: string, meta: Pick<HeadMeta, 'name' | 'weightsSha256'>): string {
  return `${baseName}+head:${meta.name}@${meta.weightsSha256.slice(0, 8)}`;
}

/** Splits an embedder name made by headEmbedderName; a name without a head gives only `base`. */
export function parseHeadEmbedderName(model: string): { base: string; head?: { name: string; sha256Prefix: string } } {
  const m = /^(.*)\+head:([^@]+)@([0-9a-f]{8})$/.exec(model);
  return m ? { base: m[1]!, head: { name: m[2]!, sha256Prefix: m[3]! } } : { base: model };
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
