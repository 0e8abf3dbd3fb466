/**
 * The ONNX Runtime adapter (issue 11): the only module that imports onnxruntime-node. A model whose registry
 * entry has `format: 'onnx'` runs here on ONNX Runtime's native CPU kernels, or on its CUDA execution
 * provider where the provider libraries are installed; TF.js models stay on runtime/tf.ts.
 *
 * Runtime choice (`runtime` option, env FACEFLOW_RUNTIME): 'auto' (each model on the runtime of its format),
 * 'onnx' or 'tfjs' (every model that has a choice must be of that runtime, else a clear error).
 * Execution provider (`provider` option, env FACEFLOW_ORT_PROVIDER): 'cpu' (default) or 'cuda'.
 *
 * CUDA: onnxruntime-node's npm package ships only the CPU provider; its postinstall would download the
 * CUDA provider from NuGet, which the project skips (.npmrc) so that `npm ci` needs only the npm registry.
 * A user with CUDA puts `libonnxruntime_providers_cuda.so` and `libonnxruntime_providers_shared.so` of
 * the same ONNX Runtime version (e.g. from the `onnxruntime-gpu` PyPI wheel; its 1.30.0 is built for CUDA 13,
 * whose runtime libraries come with its `cuda` and `cudnn` extras) into onnxruntime-node's binary folder
 * (`cudaProviderDir()`), as scripts/gpu-check.sh does, or runs its installer: `ONNXRUNTIME_NODE_INSTALL=cuda12 node
 * node_modules/onnxruntime-node/script/install`.
 *
 * No module-level mutable state: every session belongs to the wrapper that created it and is released by
 * its dispose().
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { FaceflowError } from '@faceflow/shared';
import type { InferenceSession, Tensor } from 'onnxruntime-node';

const require = createRequire(import.meta.url);

type Ort = typeof import('onnxruntime-node');

/** onnxruntime-node, loaded on first use so a TF.js-only engine never pays for the native module. */
function ort(): Ort {
  try {
    return require('onnxruntime-node') as Ort;
  } catch (e) {
    throw new FaceflowError('BACKEND_UNAVAILABLE', `onnxruntime-node cannot be loaded (${(e as Error).message.split('\n')[0]}); reinstall with \`npm ci\``, {
      cause: e,
      retriable: false,
    });
  }
}

export const RUNTIMES = ['auto', 'onnx', 'tfjs'] as const;
export type RuntimeName = (typeof RUNTIMES)[number];
export const RUNTIME_ENV = 'FACEFLOW_RUNTIME';

export const PROVIDERS = ['cpu', 'cuda'] as const;
export type ProviderName = (typeof PROVIDERS)[number];
export const PROVIDER_ENV = 'FACEFLOW_ORT_PROVIDER';

/**
 * The runtime asked for: the option, else env FACEFLOW_RUNTIME, else 'auto'. An unknown name is an
 * INVALID_ARGUMENT (a usage error: exit 2) naming the accepted values.
 */
export function parseRuntimeName(value: string | undefined, env: Record<string, string | undefined> = process.env): RuntimeName {
  const from = value !== undefined ? '--runtime' : RUNTIME_ENV;
  const v = value ?? (env[RUNTIME_ENV] || 'auto');
  if ((RUNTIMES as readonly string[]).includes(v)) return v as RuntimeName;
  throw new FaceflowError('INVALID_ARGUMENT', `unknown runtime "${v}" (${from}); use one of: ${RUNTIMES.join(', ')}`, { details: { field: from } });
}

export function parseProviderName(value: string | undefined, env: Record<string, string | undefined> = process.env): ProviderName {
  const from = value !== undefined ? '--provider' : PROVIDER_ENV;
  const v = value ?? (env[PROVIDER_ENV] || 'cpu');
  if ((PROVIDERS as readonly string[]).includes(v)) return v as ProviderName;
  throw new FaceflowError('INVALID_ARGUMENT', `unknown ONNX Runtime execution provider "${v}" (${from}); use one of: ${PROVIDERS.join(', ')}`, {
    details: { field: from },
  });
}

/** The folder onnxruntime-node loads its native libraries (and execution providers) from. */
export function cudaProviderDir(): string {
  const root = path.dirname(require.resolve('onnxruntime-node/package.json'));
  return path.join(root, 'bin', 'napi-v6', os.platform(), os.arch());
}

const CUDA_LIBS = ['libonnxruntime_providers_cuda.so', 'libonnxruntime_providers_shared.so'];

function checkProvider(provider: ProviderName): void {
  if (provider === 'cpu') return;
  const dir = cudaProviderDir();
  const missing = CUDA_LIBS.filter((f) => !existsSync(path.join(dir, f)));
  if (missing.length > 0) {
    throw new FaceflowError(
      'BACKEND_UNAVAILABLE',
      `ONNX Runtime CUDA provider not installed: ${missing.join(', ')} missing from ${dir}; copy them from the onnxruntime-gpu wheel of the same version, or use --provider cpu`,
      { retriable: false, details: { dir, missing } },
    );
  }
}

/** A model wrapper's items per ONNX Runtime call: `given`, or `fallback`, checked (one rule for every wrapper). */
export function batchSizeOf(given: number | undefined, fallback: number, what: string): number {
  const n = given ?? fallback;
  if (!(Number.isInteger(n) && n >= 1 && n <= 1024)) {
    throw new FaceflowError('INVALID_CONFIG', `${what} batchSize must be an integer in [1, 1024], got ${n}`);
  }
  return n;
}

export interface OnnxSessionOptions {
  provider?: ProviderName;
  /** intra-op threads (default 1: the engine scales with worker threads, one session each) */
  threads?: number;
}

/** What an ONNX wrapper checks its model's first input against. */
export interface InputExpectation {
  /** e.g. 3 for an RGB NCHW image */
  channels: number;
  /** the spatial dims must be symbolic (a detector fed any frame size) */
  symbolicSpatial?: boolean;
  /** or fixed at these sizes */
  height?: number;
  width?: number;
}

/** One ONNX Runtime session: created by load, used by run, released by dispose. */
export class OnnxModel {
  private constructor(
    private session: InferenceSession | undefined,
    readonly path: string,
    readonly provider: ProviderName,
  ) {}

  /**
   * Opens `file` and checks its first input (rank 4, NCHW, the expected channels and spatial dims); a file
   * ONNX Runtime rejects is MODEL_LOAD, a shape the wrapper cannot feed is MODEL_LOAD naming the shape and
   * the fix. `name` is the model's registry name, for messages.
   */
  static async load(file: string, name: string, expect: InputExpectation, options: OnnxSessionOptions = {}): Promise<OnnxModel> {
    const provider = options.provider ?? parseProviderName(undefined);
    checkProvider(provider);
    const threads = options.threads ?? 1;
    if (!(Number.isInteger(threads) && threads >= 1 && threads <= 256)) {
      throw new FaceflowError('INVALID_CONFIG', `ONNX Runtime threads must be an integer in [1, 256], got ${threads}`);
    }
    let session: InferenceSession;
    try {
      session = await ort().InferenceSession.create(file, {
        executionProviders: [provider],
        intraOpNumThreads: threads,
        interOpNumThreads: 1,
        graphOptimizationLevel: 'all',
        // weight-only int8 files (SFace int8bq: DequantizeLinear on constant weights, float activations):
        // with QDQ handling on, ONNX Runtime keeps every DequantizeLinear to run on each call, since no int8
        // kernel takes them; off, constant folding turns them into float weights once, at load. Same
        // outputs, less work per call (profiled for issue 11, see BENCHMARKS.md). No model here has
        // quantized activations, which would need QDQ handling for its int8 kernels.
        extra: { session: { disable_quant_qdq: '1' } },
        // warnings go to stderr on every load otherwise; errors still throw
        logSeverityLevel: 3,
      });
    } catch (e) {
      if (e instanceof FaceflowError) throw e;
      const msg = (e as Error).message.split('\n')[0];
      if (!existsSync(file)) throw new FaceflowError('NOT_FOUND', `model "${name}": file not found: ${file}; run \`faceflow models pull ${name}\``, { cause: e });
      throw new FaceflowError('MODEL_LOAD', `model "${name}": ONNX Runtime cannot load ${file}: ${msg}; run \`faceflow models pull --force ${name}\``, { cause: e });
    }
    const model = new OnnxModel(session, file, provider);
    try {
      model.checkInput(name, expect);
    } catch (e) {
      await model.dispose();
      throw e;
    }
    return model;
  }

  private checkInput(name: string, expect: InputExpectation): void {
    const meta = this.session!.inputMetadata[0];
    const shape = meta && meta.isTensor ? meta.shape : undefined;
    const show = shape ? `[${shape.join(',')}]` : 'not a tensor';
    const fix = `; the registry's fixed file is made by \`faceflow models pull --force ${name}\``;
    if (!shape || shape.length !== 4) throw new FaceflowError('MODEL_LOAD', `model "${name}": input shape ${show}, expected NCHW (rank 4)${fix}`);
    if (shape[1] !== expect.channels) throw new FaceflowError('MODEL_LOAD', `model "${name}": input shape ${show} has ${shape[1]} channels, expected ${expect.channels}${fix}`);
    const spatial = [shape[2], shape[3]];
    if (expect.symbolicSpatial && spatial.some((d) => typeof d === 'number')) {
      throw new FaceflowError('MODEL_LOAD', `model "${name}": input shape ${show} has a fixed size, expected symbolic height and width${fix}`);
    }
    if (expect.height !== undefined && shape[2] !== expect.height) throw new FaceflowError('MODEL_LOAD', `model "${name}": input shape ${show}, expected height ${expect.height}${fix}`);
    if (expect.width !== undefined && shape[3] !== expect.width) throw new FaceflowError('MODEL_LOAD', `model "${name}": input shape ${show}, expected width ${expect.width}${fix}`);
    if (typeof shape[0] === 'number' && shape[0] !== 1) throw new FaceflowError('MODEL_LOAD', `model "${name}": input shape ${show} has a fixed batch of ${shape[0]}${fix}`);
  }

  /** Whether the batch dimension is symbolic (several images per call) or fixed at 1. */
  get batchable(): boolean {
    const meta = this.session?.inputMetadata[0];
    return !!meta && meta.isTensor && typeof meta.shape[0] !== 'number';
  }

  get inputName(): string {
    return this.live().inputNames[0]!;
  }

  get outputNames(): readonly string[] {
    return this.live().outputNames;
  }

  private live(): InferenceSession {
    if (!this.session) throw new FaceflowError('INTERNAL', `ONNX model ${this.path} used after dispose()`);
    return this.session;
  }

  /**
   * Runs one NCHW float32 batch; returns each output's data and dims, copied out of ONNX Runtime's tensors,
   * which are then disposed (their native buffers freed now, not at garbage collection).
   */
  async run(data: Float32Array, dims: readonly number[]): Promise<Record<string, { data: Float32Array; dims: readonly number[] }>> {
    const session = this.live();
    const o = ort();
    const input = new o.Tensor('float32', data, dims);
    let outputs: InferenceSession.OnnxValueMapType;
    try {
      outputs = await session.run({ [session.inputNames[0]!]: input });
    } catch (e) {
      throw new FaceflowError('INTERNAL', `ONNX Runtime failed on ${path.basename(this.path)} with input [${dims.join(',')}]: ${(e as Error).message.split('\n')[0]}`, { cause: e });
    } finally {
      input.dispose();
    }
    const result: Record<string, { data: Float32Array; dims: readonly number[] }> = {};
    for (const [k, v] of Object.entries(outputs)) {
      const t = v as Tensor;
      result[k] = { data: Float32Array.from(t.data as Float32Array), dims: [...t.dims] };
      t.dispose();
    }
    return result;
  }

  async dispose(): Promise<void> {
    const s = this.session;
    this.session = undefined;
    await s?.release();
  }
}
