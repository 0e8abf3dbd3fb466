/**
 * A projection head's head.json (HeadMeta) and the names and thresholds it gives, without TF.js (issue 13:
 * the matcher and `@faceflow/engine/match` read a head's name and thresholds and load no model). The head
 * itself (its TF.js layers model, training, saving) is ../train/head.ts.
 */
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { FaceflowError } from '@faceflow/shared';
import type { FarCalibration } from '../eval/far.js';

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

/**
 * The thresholds a head carries, in the shape of an engine's EmbedderInfo (what the engine reports once it
 * applies the head): what the decision policy (match/decision.ts) reads, for a service that loads no model.
 */
export function headEmbedderInfo(baseName: string, meta: HeadMeta): { name: string; threshold: number; distanceAtFar1e3: number; distanceAtFar1e3Fallback?: true } {
  const identify = headIdentifyThreshold(meta);
  return { name: headEmbedderName(baseName, meta), threshold: meta.threshold, distanceAtFar1e3: identify.threshold, ...(identify.fallback ? { distanceAtFar1e3Fallback: true as const } : {}) };
}
