/** Building the engine from the CLI's common flags, and the face-picking rules the commands share. */
import os from 'node:os';
import {
  EnginePool,
  FaceEngine,
  type EngineConfig,
  type Face,
  type RunOptions,
  type RgbImage,
  type EmbedderInfo,
  calibrationFor,
} from '@faceflow/engine';
import { FaceflowError } from '@faceflow/shared';
import { type CommandContext, type Flags, num, str } from './cli.js';

export const ENGINE_FLAGS: Flags = {
  backend: { type: 'string' },
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
  '  --workers N        engine worker threads for long jobs (default: number of cores)',
  '  --min-face PX      smallest face side to look for, in pixels (default 40)',
  '  --min-score S      detector confidence needed for a face, in (0,1) (default 0.65)',
  '  --whole-image      the image is already a tight face crop: skip detection',
  '  --no-flip          do not average the embedding with the mirrored face (faster, slightly less accurate)',
  '  --embedder NAME    embedding model from the registry (default faceapi-recognition; faceflow models list)',
  '  --registry FILE    a registry file with your own models (env FACEFLOW_MODEL_REGISTRY)',
  '  --head DIR         a projection head trained by `faceflow train`, applied to every embedding (its own',
  '                     embedder name and recalibrated threshold come with it)',
];

export interface Runner {
  run(images: RgbImage[], options?: RunOptions): Promise<Face[][]>;
  close(): Promise<void>;
  embedder: EmbedderInfo;
}

export function engineConfig(ctx: CommandContext): EngineConfig {
  const cfg: EngineConfig = {};
  const backend = str(ctx, 'backend');
  if (backend !== undefined) cfg.backend = backend;
  const minFace = num(ctx, 'min-face', { min: 8, max: 10000 });
  const minScore = num(ctx, 'min-score', { min: 0.01, max: 0.99 });
  if (minFace !== undefined || minScore !== undefined) {
    cfg.detector = { ...(minFace !== undefined ? { minFaceSize: minFace } : {}), ...(minScore !== undefined ? { scoreThreshold: minScore } : {}) };
  }
  if (ctx.values['no-flip']) cfg.flip = false;
  const embedder = str(ctx, 'embedder');
  if (embedder !== undefined) cfg.models = { embedder };
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
    return { run: (images, options) => pool.run(images, options), close: () => pool.close(), embedder: pool.embedderInfo };
  }
  const engine = await FaceEngine.load(cfg);
  return {
    run: (images, options) => engine.run(images, options),
    close: async () => engine.dispose(),
    embedder: engine.embedderInfo,
  };
}

export function runOptions(ctx: CommandContext, extra: RunOptions = {}): RunOptions {
  return { ...extra, wholeImageIsFace: ctx.values['whole-image'] === true };
}

export function largestFace(faces: Face[], source: string): Face {
  if (faces.length === 0) throw new FaceflowError('NO_FACE', `no face found in ${source}`);
  return faces.reduce((a, b) => (b.box.width * b.box.height > a.box.width * a.box.height ? b : a));
}

/** LFW images are centred on the labelled person: the detected face nearest the image centre. */
export function centreFace(faces: Face[], width: number, height: number): Face | undefined {
  let best: Face | undefined;
  let bestD = Infinity;
  for (const f of faces) {
    const d = (f.box.x + f.box.width / 2 - width / 2) ** 2 + (f.box.y + f.box.height / 2 - height / 2) ** 2;
    if (d < bestD) {
      bestD = d;
      best = f;
    }
  }
  return best;
}

/**
 * The decision threshold: --threshold; else the one the engine's model carries (a projection head's) when
 * `embedder` makes `model`'s embeddings; else the model's shipped calibration: for verify (1:1) the
 * accuracy-optimal threshold, for identify (1:N) the stricter distance at FAR 1e-3, because every enrolled
 * identity is one more chance to name a stranger (false accepts grow with N), and naming a stranger is the
 * failure users of face search complain about most. Else an error.
 */
export function threshold(ctx: CommandContext, model: string, kind: 'verify' | 'identify', embedder?: EmbedderInfo): number {
  const t = num(ctx, 'threshold', { min: 0, max: 2 });
  if (t !== undefined) return t;
  if (embedder?.name === model && embedder.threshold !== undefined) return embedder.threshold;
  const cal = calibrationFor(model);
  if (!cal) throw new FaceflowError('INVALID_CONFIG', `model "${model}" has no calibrated threshold; pass --threshold`);
  return kind === 'verify' ? cal.threshold : cal.distanceAtFar1e3;
}

export function round(v: number, digits = 4): number {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}

export function boxJson(b: { x: number; y: number; width: number; height: number }): { x: number; y: number; width: number; height: number } {
  return { x: round(b.x, 1), y: round(b.y, 1), width: round(b.width, 1), height: round(b.height, 1) };
}
