/**
 * The CLI's common engine flags -> an EngineConfig (pure flag mapping), and the small wrappers the commands
 * share around the engine's own policies (startRunner, decisionThreshold, precheckGalleryHead, largestFace).
 */
import os from 'node:os';
import { decisionThreshold, largestFace as largestOf } from '@faceflow/engine';
import { precheckGalleryHead as precheckGalleryHeadOf } from '@faceflow/engine/match';
import { startRunner } from '@faceflow/engine/recognize';
import { BACKENDS, parseProviderName, parseRuntimeName } from '@faceflow/engine/runtime';
import { type DetectedFace, type EmbedderInfo, type EngineConfig, type RunOptions } from '@faceflow/engine';
import { type Runner } from '@faceflow/engine/recognize';
import { FaceflowError } from '@faceflow/shared';
import { type CommandContext, type Flags, num, str, UsageError } from './cli.js';

export { centreFace } from '@faceflow/engine/eval';
export { galleryModelMismatch } from '@faceflow/engine/match';
export { type Runner } from '@faceflow/engine/recognize';

const STRING_FLAGS = ['backend', 'runtime', 'provider', 'detector', 'workers', 'min-face', 'min-score', 'embedder', 'registry', 'head'];
export const ENGINE_FLAGS: Flags = {
  ...Object.fromEntries(STRING_FLAGS.map((f) => [f, { type: 'string' as const }])),
  'whole-image': { type: 'boolean', default: false },
  'no-flip': { type: 'boolean', default: false },
};

export const ENGINE_HELP = [
  '  --backend B        TF.js backend: auto (default), tensorflow, wasm, cpu (env FACEFLOW_BACKEND)',
  '  --runtime R        model runtime: auto (default: each model on its format\'s), onnx, tfjs (env FACEFLOW_RUNTIME);',
  '                     tfjs without --detector means BlazeFace; the dlib embedder and the 68 landmarks run',
  '                     on either (onnx: their converted files faceapi-recognition-onnx and',
  '                     faceapi-landmarks68-onnx, faceflow models pull --all; auto: those files when installed)',
  '  --provider P       ONNX Runtime execution provider: cpu (default), cuda (env FACEFLOW_ORT_PROVIDER)',
  '  --detector D       face detector: yunet (default; ONNX, installed by faceflow models pull yunet-2023mar),',
  '                     blazeface (TF.js), or a detector\'s registry name',
  '  --workers N        engine worker threads for long jobs (default: number of cores)',
  '  --min-face PX      smallest face side to look for, in pixels (default 40)',
  '  --min-score S      detector confidence needed for a face, in (0,1) (default: the detector\'s,',
  '                     0.6 for yunet, 0.65 for blazeface)',
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

/** The engine flags as an EngineConfig; a bad name or number is a usage error (exit 2) before any model loads (issue 12). */
export function engineConfig(ctx: CommandContext): EngineConfig {
  const backend = str(ctx, 'backend');
  if (backend !== undefined && backend !== 'auto' && !(BACKENDS as readonly string[]).includes(backend)) throw new UsageError(`--backend must be one of auto, ${BACKENDS.join(', ')}; got "${backend}"`);
  const [runtime, provider] = [str(ctx, 'runtime'), str(ctx, 'provider')];
  try {
    parseRuntimeName(runtime);
    parseProviderName(provider);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const [minFaceSize, scoreThreshold] = [num(ctx, 'min-face', { min: 8, max: 10000 }), num(ctx, 'min-score', { min: 0.01, max: 0.99 })];
  const [embedder, detector, registryFile, head] = ['embedder', 'detector', 'registry', 'head'].map((f) => str(ctx, f));
  const cfg: EngineConfig = { ...defined({ backend, runtime, onnxProvider: provider, registryFile, head }) };
  if (minFaceSize !== undefined || scoreThreshold !== undefined) cfg.detector = defined({ minFaceSize, scoreThreshold });
  if (ctx.values['no-flip']) cfg.flip = false;
  if (embedder !== undefined || detector !== undefined) cfg.models = defined({ embedder, detector });
  return cfg;
}

/** `o` without its undefined entries (the config's optional fields are absent, not undefined). */
function defined<T extends object>(o: T): { [K in keyof T]?: Exclude<T[K], undefined> } {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as { [K in keyof T]?: Exclude<T[K], undefined> };
}

/** One engine in this thread for a few images, a worker pool for many (the engine's startRunner). */
export async function makeRunner(ctx: CommandContext, many: boolean): Promise<Runner> {
  const cfg = engineConfig(ctx);
  return startRunner(cfg, num(ctx, 'workers', { min: 1, max: 256, integer: true }) ?? (many ? os.availableParallelism() : 1));
}

export function runOptions(ctx: CommandContext, extra: RunOptions = {}): RunOptions {
  return { ...extra, wholeImageIsFace: ctx.values['whole-image'] === true };
}

/** NO_FACE for `source`: a tight crop of one face is not found by the detector, and the message says so (issue 12). */
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

/** Each line of a decision-threshold warning on stderr. */
export function printThresholdWarning(warning: string | undefined): void {
  for (const line of warning?.split('\n') ?? []) process.stderr.write(`faceflow: warning: ${line}\n`);
}

/** The engine's decisionThreshold for a gallery of `model` embeddings, --threshold its override; `embedder`'s thresholds count when it makes them. */
export function threshold(ctx: CommandContext, model: string, kind: 'verify' | 'identify' | 'redact', embedder?: EmbedderInfo): number {
  const chosen = decisionThreshold(embedder?.name === model ? embedder : { name: model }, kind, num(ctx, 'threshold', { min: 0, max: 2 }));
  printThresholdWarning(chosen.warning);
  return chosen.value;
}

/** The engine's precheckGalleryHead with this command's --head and --embedder. */
export async function precheckGalleryHead(ctx: CommandContext, file: string, galleryModel: string | undefined): Promise<void> {
  await precheckGalleryHeadOf(file, galleryModel, { head: str(ctx, 'head'), embedder: str(ctx, 'embedder') });
}

export const round = (v: number, digits = 4): number => Math.round(v * 10 ** digits) / 10 ** digits;

export function boxJson(b: { x: number; y: number; width: number; height: number }): { x: number; y: number; width: number; height: number } {
  return { x: round(b.x, 1), y: round(b.y, 1), width: round(b.width, 1), height: round(b.height, 1) };
}
