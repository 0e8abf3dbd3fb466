/** Building the engine from the CLI's common flags, and the face-picking rules the commands share. */
import os from 'node:os';
import { EnginePool, FaceEngine, type EngineConfig, type DetectedFace, type RunOptions, type RgbImage, type EmbedderInfo, decisionThreshold, largestFace as largestOf } from '@faceflow/engine';
import { precheckGalleryHead as precheckGalleryHeadOf } from '@faceflow/engine/match';
import { type EngineModels } from '@faceflow/engine/recognize';
import { BACKENDS, parseProviderName, parseRuntimeName } from '@faceflow/engine/runtime';
import { FaceflowError } from '@faceflow/shared';
import { type CommandContext, type Flags, num, str, UsageError } from './cli.js';

export const ENGINE_FLAGS: Flags = {
  backend: { type: 'string' },
  runtime: { type: 'string' },
  provider: { type: 'string' },
  detector: { type: 'string' },
  workers: { type: 'string' },
  'min-face': { type: 'string' },
  'min-score': { type: 'string' },
  'whole-image': { type: 'boolean', default: false },
  'no-flip': { type: 'boolean', default: false },
  embedder: { type: 'string' },
  registry: { type: 'string' },
  head: { type: 'string' },
};

export const ENGINE_HELP = [
  '  --backend B        TF.js backend: auto (default), tensorflow, wasm, cpu (env FACEFLOW_BACKEND)',
  '  --runtime R        model runtime: auto (default: each model on its format\'s), onnx, tfjs (env FACEFLOW_RUNTIME);',
  '                     onnx without --detector means YuNet; landmarks and the dlib embedder stay on TF.js',
  '  --provider P       ONNX Runtime execution provider: cpu (default), cuda (env FACEFLOW_ORT_PROVIDER)',
  '  --detector D       face detector: blazeface (default), yunet (ONNX; install: faceflow models pull yunet-2023mar),',
  '                     or a detector\'s registry name',
  '  --workers N        engine worker threads for long jobs (default: number of cores)',
  '  --min-face PX      smallest face side to look for, in pixels (default 40)',
  '  --min-score S      detector confidence needed for a face, in (0,1) (default 0.65)',
  '  --whole-image      the image is already a tight face crop: skip detection',
  '  --no-flip          do not average the embedding with the mirrored face (faster, slightly less accurate)',
  '  --embedder NAME    embedding model from the registry (default faceapi-recognition; faceflow models list)',
  '  --registry FILE    a registry file with your own models (env FACEFLOW_MODEL_REGISTRY)',
  '  --head DIR         a projection head trained by `faceflow train`, applied to every embedding; its own',
  '                     embedder name and thresholds come with it (verify: its accuracy-optimal one; identify',
  '                     and run: its distance at FAR 1e-3, or, for a head trained before heads recorded one,',
  '                     its accuracy-optimal one, with a warning). A gallery enrolled with a head is used only',
  '                     with that head, and one enrolled without a head only without',
];

export interface Runner {
  run(images: RgbImage[], options?: RunOptions): Promise<DetectedFace[][]>;
  close(): Promise<void>;
  embedder: EmbedderInfo;
  /** the detector, landmarks and embedder and the runtime of each */
  models: EngineModels;
  workers: number;
}

export function engineConfig(ctx: CommandContext): EngineConfig {
  const cfg: EngineConfig = {};
  const backend = str(ctx, 'backend');
  // a misspelt backend is a usage error (exit 2), found before any model loads (issue 12)
  if (backend !== undefined && backend !== 'auto' && !(BACKENDS as readonly string[]).includes(backend)) {
    throw new UsageError(`--backend must be one of auto, ${BACKENDS.join(', ')}; got "${backend}"`);
  }
  if (backend !== undefined) cfg.backend = backend;
  // a bad runtime or provider name (flag or env) is a usage error: exit 2 before any model loads
  const runtime = str(ctx, 'runtime');
  const provider = str(ctx, 'provider');
  try {
    parseRuntimeName(runtime);
    parseProviderName(provider);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  if (runtime !== undefined) cfg.runtime = runtime;
  if (provider !== undefined) cfg.onnxProvider = provider;
  const minFace = num(ctx, 'min-face', { min: 8, max: 10000 });
  const minScore = num(ctx, 'min-score', { min: 0.01, max: 0.99 });
  if (minFace !== undefined || minScore !== undefined) {
    cfg.detector = { ...(minFace !== undefined ? { minFaceSize: minFace } : {}), ...(minScore !== undefined ? { scoreThreshold: minScore } : {}) };
  }
  if (ctx.values['no-flip']) cfg.flip = false;
  const embedder = str(ctx, 'embedder');
  const detector = str(ctx, 'detector');
  if (embedder !== undefined || detector !== undefined) {
    cfg.models = { ...(embedder !== undefined ? { embedder } : {}), ...(detector !== undefined ? { detector } : {}) };
  }
  const registry = str(ctx, 'registry');
  if (registry !== undefined) cfg.registryFile = registry;
  const head = str(ctx, 'head');
  if (head !== undefined) cfg.head = head;
  return cfg;
}

/** One engine in this thread for a few images, a worker pool for many. */
export async function makeRunner(ctx: CommandContext, many: boolean): Promise<Runner> {
  const cfg = engineConfig(ctx);
  const workers = num(ctx, 'workers', { min: 1, max: 256, integer: true }) ?? (many ? os.availableParallelism() : 1);
  if (workers > 1) {
    const pool = await EnginePool.start(cfg, workers);
    return { run: (images, options) => pool.run(images, options), close: () => pool.close(), embedder: pool.embedderInfo, models: pool.models, workers };
  }
  const engine = await FaceEngine.load(cfg);
  return {
    run: (images, options) => engine.run(images, options),
    close: async () => engine.dispose(),
    embedder: engine.embedderInfo,
    models: engine.models,
    workers: 1,
  };
}

export function runOptions(ctx: CommandContext, extra: RunOptions = {}): RunOptions {
  return { ...extra, wholeImageIsFace: ctx.values['whole-image'] === true };
}

/**
 * NO_FACE for `source`. The detector needs some context around a face, so a tight crop of one is not found:
 * without --whole-image the message says so (issue 12).
 */
export function noFaceError(ctx: CommandContext, source: string): FaceflowError {
  const hint = ctx.values['whole-image'] === true ? '' : ' (if the image is a tight crop of one face, pass --whole-image to skip detection)';
  return new FaceflowError('NO_FACE', `no face found in ${source}${hint}`);
}

/** The largest face (the engine's largestFace), or NO_FACE for `source`. */
export function largestFace(ctx: CommandContext, faces: DetectedFace[], source: string): DetectedFace {
  const face = largestOf(faces);
  if (!face) throw noFaceError(ctx, source);
  return face;
}

/** LFW images are centred on the labelled person: the engine's rule (eval/lfw.ts). */
export { centreFace } from '@faceflow/engine/eval';

/** Each line of a decision-threshold warning on stderr. */
export function printThresholdWarning(warning: string | undefined): void {
  for (const line of warning?.split('\n') ?? []) process.stderr.write(`faceflow: warning: ${line}\n`);
}

/**
 * The decision threshold for a gallery of `model` embeddings: the engine's one policy (decisionThreshold,
 * match/decision.ts) with --threshold as its override; the thresholds `embedder` carries count when it makes
 * `model`'s embeddings. Its warnings go to stderr.
 */
export function threshold(ctx: CommandContext, model: string, kind: 'verify' | 'identify' | 'redact', embedder?: EmbedderInfo): number {
  const chosen = decisionThreshold(embedder?.name === model ? embedder : { name: model }, kind, num(ctx, 'threshold', { min: 0, max: 2 }));
  printThresholdWarning(chosen.warning);
  return chosen.value;
}

/** The engine's galleryModelMismatch, for the commands that name it here. */
export { galleryModelMismatch } from '@faceflow/engine/match';

/** The engine's precheckGalleryHead with this command's --head and --embedder. */
export async function precheckGalleryHead(ctx: CommandContext, file: string, galleryModel: string | undefined): Promise<void> {
  await precheckGalleryHeadOf(file, galleryModel, { head: str(ctx, 'head'), embedder: str(ctx, 'embedder') });
}

export function round(v: number, digits = 4): number {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}

export function boxJson(b: { x: number; y: number; width: number; height: number }): { x: number; y: number; width: number; height: number } {
  return { x: round(b.x, 1), y: round(b.y, 1), width: round(b.width, 1), height: round(b.height, 1) };
}
