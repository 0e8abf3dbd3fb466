/** Loading TF.js models and weights from files on disk, with no network and no tfjs-node file handler. */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { FaceflowError } from '@faceflow/shared';
import { tf } from './tf.js';
import type { io } from '@tensorflow/tfjs';

interface ModelJson {
  modelTopology?: unknown;
  format?: string;
  generatedBy?: string;
  convertedBy?: string | null;
  signature?: unknown;
  userDefinedMetadata?: Record<string, unknown>;
  modelInitializer?: unknown;
  weightsManifest: Array<{ paths: string[]; weights: io.WeightsManifestEntry[] }>;
}

async function readJson<T>(file: string): Promise<T> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new FaceflowError('NOT_FOUND', `model file not found: ${file}`, { cause: e });
  }
  try {
    return JSON.parse(text) as T;
  } catch (e) {
    throw new FaceflowError('MODEL_LOAD', `model file is not valid JSON: ${file}`, { cause: e });
  }
}

async function readWeights(
  dir: string,
  manifest: Array<{ paths: string[]; weights: io.WeightsManifestEntry[] }>,
): Promise<{ specs: io.WeightsManifestEntry[]; data: ArrayBuffer }> {
  const specs: io.WeightsManifestEntry[] = [];
  const buffers: Buffer[] = [];
  for (const group of manifest) {
    specs.push(...group.weights);
    for (const p of group.paths) {
      const file = path.join(dir, p);
      try {
        buffers.push(await readFile(file));
      } catch (e) {
        throw new FaceflowError('MODEL_LOAD', `weights file missing: ${file}`, { cause: e });
      }
    }
  }
  const all = Buffer.concat(buffers);
  return { specs, data: all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength) as ArrayBuffer };
}

/** An IOHandler reading a TF.js model.json (graph or layers format) and its shards from disk. */
export function fileHandler(modelJsonPath: string): io.IOHandler {
  return {
    load: async () => {
      const json = await readJson<ModelJson>(modelJsonPath);
      if (!Array.isArray(json.weightsManifest)) {
        throw new FaceflowError('MODEL_LOAD', `${modelJsonPath} has no weightsManifest: not a TF.js model`);
      }
      const { specs, data } = await readWeights(path.dirname(modelJsonPath), json.weightsManifest);
      const artifacts: io.ModelArtifacts = { modelTopology: json.modelTopology as object, weightSpecs: specs, weightData: data };
      if (json.format) artifacts.format = json.format;
      if (json.generatedBy) artifacts.generatedBy = json.generatedBy;
      if (json.convertedBy) artifacts.convertedBy = json.convertedBy;
      if (json.signature) artifacts.signature = json.signature as object;
      if (json.userDefinedMetadata) artifacts.userDefinedMetadata = json.userDefinedMetadata as Record<string, {}>;
      if (json.modelInitializer) artifacts.modelInitializer = json.modelInitializer as object;
      return artifacts;
    },
  };
}

export async function loadGraphModelFromFile(modelJsonPath: string): Promise<import('@tensorflow/tfjs').GraphModel> {
  try {
    return await tf.loadGraphModel(fileHandler(modelJsonPath));
  } catch (e) {
    if (e instanceof FaceflowError) throw e;
    throw new FaceflowError('MODEL_LOAD', `cannot load graph model ${modelJsonPath}: ${(e as Error).message}`, { cause: e });
  }
}

export async function loadLayersModelFromFile(modelJsonPath: string): Promise<import('@tensorflow/tfjs').LayersModel> {
  try {
    return await tf.loadLayersModel(fileHandler(modelJsonPath));
  } catch (e) {
    if (e instanceof FaceflowError) throw e;
    throw new FaceflowError('MODEL_LOAD', `cannot load layers model ${modelJsonPath}: ${(e as Error).message}`, { cause: e });
  }
}

/**
 * Reads a face-api style `*-weights_manifest.json` (a bare weights manifest, no topology) into named
 * tensors. The caller owns the tensors and must dispose them.
 */
export async function loadWeightMapFromFile(manifestPath: string): Promise<Record<string, import('@tensorflow/tfjs').Tensor>> {
  const manifest = await readJson<Array<{ paths: string[]; weights: io.WeightsManifestEntry[] }>>(manifestPath);
  if (!Array.isArray(manifest)) throw new FaceflowError('MODEL_LOAD', `${manifestPath} is not a weights manifest`);
  const { specs, data } = await readWeights(path.dirname(manifestPath), manifest);
  return tf.io.decodeWeights(data, specs);
}
