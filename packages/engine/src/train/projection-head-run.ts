/**
 * `faceflow train` as one call (issue 13 step 2: the orchestration out of the CLI): scan the identity folders,
 * embed every image (and its augmented copies) with the frozen base embedder, fit the projection head with the
 * triplet loss (trainer.ts: split, fit, calibration), then write the head folder: model.json + weights.bin,
 * head.json (thresholds, base model, config), report.json (history, warnings) and the loss curve PNG.
 *
 * The chips are the base engine's own (its alignChip): a head is trained on what the embedder sees in every
 * other command.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { FaceflowError } from '@faceflow/shared';
import type { EngineHandle } from '../recognize/open-engine.js';
import type { DetectedFace, EngineConfig } from '../recognize/engine.js';
import type { RgbImage } from '../image/geometry.js';
import { decodeImage } from '../image/image.js';
import { degradeImage } from '../image/degrade.js';
import { initRuntime } from '../runtime/tf.js';
import { roundTo as round } from '../eval/rounding.js';
import { DEFAULT_AUGMENT_RANGES, faceSizeOf, type Augmentation } from './augment.js';
import { scanIdentityFolders } from './dataset.js';
import { EmbeddingCache, embedIdentities, type BaseEmbedder } from './embed-set.js';
import { saveHead } from './head.js';
import { lossCurveSvg } from './plot.js';
import { DEFAULT_TRAIN_CONFIG, trainHead, type EpochRecord, type TrainConfig, type ValMetrics } from './trainer.js';

/** The engine calls the run needs (openEngine's handle, with no head: a head is trained on base vectors). */
export type TrainEngine = Pick<EngineHandle, 'run' | 'alignChip' | 'embedChips' | 'embedderInfo' | 'close'>;

export interface ProjectionHeadRunOptions {
  /** one sub-folder per identity */
  data: string;
  /** the head folder */
  out: string;
  /** the head's name (1-64 letters, digits, '.', '_' or '-') */
  name: string;
  /** the trainer's settings; `head` is the kind of head */
  config: Partial<TrainConfig>;
  augment: Augmentation[];
  /** augmented copies per image besides the clean one */
  copies: number;
  /** probability of each listed augmentation on a copy (default DEFAULT_AUGMENT_RANGES.p) */
  augmentP?: number;
  /** 'chip' (default): degrade the aligned chip; 'image': the whole picture before detection */
  stage?: 'chip' | 'image';
  /** when no face is detected, a centred box of this fraction of the image side */
  fallbackCenter?: number;
  wholeImage?: boolean;
  /** the base engine's config (its flip, detector settings and backend go into the embeddings' tag) */
  engine: EngineConfig;
  /** engine workers: images in flight are twice as many (at least 2) */
  workers: number;
  /** the base-embedding cache folder (default ~/.cache/faceflow/train); null: compute afresh */
  cacheDir?: string | null;
  /** the loss curve PNG (default OUT/loss.png) */
  plot?: string;
  progress?: (label: string, total: number) => { tick(): void; done(): void };
  /** each warning worth a line on stderr (the first 10 of the data's, then a count; an unresolved FAR) */
  warn?: (message: string) => void;
  onEpoch?: (record: EpochRecord, best: boolean) => void;
}

/** The face of a training image: the largest one containing the image centre, else the largest. */
export function centralLargestFace<F extends { box: { x: number; y: number; width: number; height: number } }>(faces: F[], width: number, height: number): F | undefined {
  const area = (f: F): number => f.box.width * f.box.height;
  const central = faces.filter((f) => f.box.x <= width / 2 && f.box.x + f.box.width >= width / 2 && f.box.y <= height / 2 && f.box.y + f.box.height >= height / 2);
  const from = central.length > 0 ? central : faces;
  return from.reduce<F | undefined>((best, f) => (!best || area(f) > area(best) ? f : best), undefined);
}

/** The embeddings' tag: the model and every setting that changes its vectors (the cache keys on it). */
function baseTag(engine: TrainEngine, options: ProjectionHeadRunOptions): string {
  const info = engine.embedderInfo;
  // dlib-aligned chips keep the tag they had when train aligned them itself, so cached vectors stay valid
  const chip = info.alignment === 'arcface' ? 'arcface' : `dlib-${options.engine.chipPadding ?? 0.25}`;
  return JSON.stringify({ model: info.name, flip: options.engine.flip ?? true, whole: options.wholeImage === true, fallback: options.fallbackCenter ?? null, detector: options.engine.detector ?? null, pick: 'central-largest', chip });
}

/** The base embedder of the set, backed by the engine (see the module comment). */
function baseEmbedder(engine: TrainEngine, options: ProjectionHeadRunOptions): BaseEmbedder {
  const fallback = options.fallbackCenter;
  const faceOf = async (image: RgbImage): Promise<DetectedFace | undefined> => {
    const [faces] = await engine.run([image], { embed: false, wholeImageIsFace: options.wholeImage === true, ...(fallback ? { fallbackCenterFraction: fallback } : {}) });
    return centralLargestFace(faces!, image.width, image.height);
  };
  const align = (image: RgbImage, face: DetectedFace): Uint8Array => engine.alignChip(image, face.landmarks);
  return {
    tag: baseTag(engine, options),
    chipSize: engine.embedderInfo.chipSize,
    chipPadding: options.engine.chipPadding ?? 0.25,
    async chip(file) {
      const image = await decodeImage(file);
      const face = await faceOf(image);
      return face ? align(image, face) : null;
    },
    async imageChips(file, plans) {
      const image = await decodeImage(file);
      const clean = await faceOf(image);
      if (!clean) return null;
      const size = faceSizeOf(clean.landmarks);
      const chips: Uint8Array[] = [];
      for (const ops of plans) {
        if (ops.length === 0) {
          chips.push(align(image, clean));
          continue;
        }
        const degraded = await degradeImage(image, ops, size);
        // a face the detector loses in the degraded copy is aligned where the clean image had it
        chips.push(align(degraded, (await faceOf(degraded)) ?? clean));
      }
      return chips;
    },
    embedChips: (chips) => engine.embedChips(chips),
  };
}

/** One epoch's figures, as `faceflow train` logs them on stderr. */
export function epochLine(r: EpochRecord, best: boolean): string {
  return `epoch ${r.epoch}: train loss ${r.trainLoss === null ? '-' : r.trainLoss.toFixed(4)}, val loss ${r.valLoss.toFixed(4)}, val accuracy ${(r.valAccuracy * 100).toFixed(2)}% (threshold ${r.valThreshold.toFixed(3)}, AUC ${r.valAuc.toFixed(4)})${best ? ' *' : ''}`;
}

const metrics = (m: ValMetrics): Record<string, number> => ({ loss: round(m.loss, 5), accuracy: round(m.accuracy, 5), threshold: round(m.threshold, 4), auc: round(m.auc, 5) });

/**
 * Trains and writes a projection head (see the module comment). `open` is called once the identity folders
 * passed their checks (a folder with one identity fails before any model loads); the engine is closed when
 * the embedding is done.
 */
export async function trainProjectionHead(open: () => Promise<TrainEngine>, options: ProjectionHeadRunOptions) {
  const { data, out, name, augment, copies } = options;
  const config = options.config;
  const kind = config.head ?? DEFAULT_TRAIN_CONFIG.head;
  const stage = options.stage ?? 'chip';
  const augmentP = options.augmentP ?? DEFAULT_AUGMENT_RANGES.p;
  const warn = options.warn ?? (() => {});
  const scan = await scanIdentityFolders(data);
  const warnings = [...scan.warnings];
  const cacheDir = options.cacheDir === undefined ? path.join(os.homedir(), '.cache', 'faceflow', 'train') : options.cacheDir;
  const cacheFile = cacheDir === null ? null : path.join(cacheDir, 'embeddings.jsonl');
  const cache = cacheFile === null ? undefined : await EmbeddingCache.open(cacheFile);

  const engine = await open();
  const info = engine.embedderInfo;
  const images = scan.identities.reduce((s, i) => s + i.files.length, 0);
  const bar = options.progress?.(`embedding ${images} images x ${1 + copies}`, images);
  const started = Date.now();
  let set;
  try {
    const seed = config.seed ?? DEFAULT_TRAIN_CONFIG.seed;
    set = await embedIdentities(scan.identities, baseEmbedder(engine, options), {
      augment, copies, stage, seed, ranges: { ...DEFAULT_AUGMENT_RANGES, p: augmentP }, ...(cache ? { cache } : {}), concurrency: Math.max(2, options.workers * 2), onImage: () => bar?.tick(),
    });
  } finally {
    bar?.done();
    await engine.close();
  }
  const embedSeconds = (Date.now() - started) / 1000;
  warnings.push(...set.warnings);
  for (const w of warnings.slice(0, 10)) warn(w);
  if (warnings.length > 10) warn(`... and ${warnings.length - 10} more (all in ${path.join(out, 'report.json')})`);

  // the head trains in this thread, on vectors
  await initRuntime(options.engine.backend === undefined ? {} : { backend: options.engine.backend });
  const epochBar = options.progress?.('training (epochs)', config.epochs ?? DEFAULT_TRAIN_CONFIG.epochs);
  const trainStarted = Date.now();
  let result;
  try {
    result = await trainHead(set.identities, config, {
      onEpoch: (r, best) => {
        if (r.epoch > 0) epochBar?.tick();
        options.onEpoch?.(r, best);
      },
    });
  } finally {
    epochBar?.done();
  }
  const trainSeconds = (Date.now() - trainStarted) / 1000;
  const training = {
    data,
    identities: set.identities.length,
    images: set.stats.usedImages,
    skippedImages: set.stats.skippedImages,
    augment,
    augmentP,
    augmentStage: stage,
    copies,
    flip: options.engine.flip ?? true,
    fallbackCenter: options.fallbackCenter ?? null,
    config: result.config,
    epochsRun: result.history.length - 1,
    bestEpoch: result.bestEpoch,
    stoppedEarly: result.stoppedEarly,
  };
  const validation = {
    identities: result.split.validation.length,
    pairs: result.validationPairs,
    monitor: config.monitor ?? DEFAULT_TRAIN_CONFIG.monitor,
    improved: result.improved,
    base: { ...metrics(result.base), distanceAtFar1e3: round(result.baseFar.distance, 4) },
    head: { ...metrics(result.best), distanceAtFar1e3: round(result.far.distance, 4) },
    impostorPairs: result.far.impostorPairs,
    farResolved: result.far.resolved,
  };
  if (!result.far.resolved) {
    const w = `only ${result.far.impostorPairs} impostor pairs among the ${result.thresholdSource.replace('-', ' ')}: FAR 1e-3 needs 1000; the identify threshold is the smallest impostor distance (no false accept among ${result.far.impostorPairs}), add identities or raise --val-fraction to resolve it`;
    warnings.push(w);
    warn(w);
  }
  let meta;
  try {
    meta = await saveHead(result.model, out, {
      name,
      baseModel: info.name,
      kind,
      inputDim: result.inputDim,
      dim: result.dim,
      ...(kind === 'mlp' ? { hidden: result.config.hidden ?? 256 } : {}),
      threshold: round(result.threshold, 6),
      thresholdSource: result.thresholdSource,
      distanceAtFar1e3: round(result.distanceAtFar1e3, 6),
      far: { ...result.far, distance: round(result.far.distance, 6) },
      validation,
      training,
    });
  } finally {
    result.model.dispose();
  }
  const plot = options.plot ?? path.join(out, 'loss.png');
  const svg = lossCurveSvg(result.history, result.bestEpoch, `faceflow train ${name}: ${kind} head, ${config.mining ?? DEFAULT_TRAIN_CONFIG.mining} mining, best epoch ${result.bestEpoch}`);
  try {
    await mkdir(path.dirname(path.resolve(plot)), { recursive: true });
    await writeFile(plot, await sharp(Buffer.from(svg)).png().toBuffer());
  } catch (e) {
    throw new FaceflowError('INVALID_ARGUMENT', `cannot write plot ${plot}: ${(e as Error).message}`, { cause: e });
  }
  const report = {
    head: out,
    embedder: `${info.name}+head:${meta.name}@${meta.weightsSha256.slice(0, 8)}`,
    threshold: meta.threshold,
    thresholdSource: meta.thresholdSource,
    distanceAtFar1e3: meta.distanceAtFar1e3,
    far: meta.far!,
    validation,
    training,
    split: result.split,
    embedding: { ...set.stats, cache: cacheFile, seconds: round(embedSeconds, 1) },
    trainSeconds: round(trainSeconds, 1),
    history: result.history.map((h) => ({
      ...h,
      trainLoss: h.trainLoss === null ? null : round(h.trainLoss, 5),
      activeFraction: h.activeFraction === null ? null : round(h.activeFraction, 4),
      valLoss: round(h.valLoss, 5),
      valAccuracy: round(h.valAccuracy, 5),
      valThreshold: round(h.valThreshold, 4),
      valAuc: round(h.valAuc, 5),
      seconds: round(h.seconds, 2),
    })),
    warnings,
    plot,
  };
  await writeFile(path.join(out, 'report.json'), `${JSON.stringify(report, null, 2)}\n`);
  // the unrounded validation figures too, for the caller's summary
  return { report, base: result.base, head: result.best, inputDim: result.inputDim, dim: result.dim };
}

/** What trainProjectionHead returns: `report` is what report.json holds. */
export type ProjectionHeadRunResult = Awaited<ReturnType<typeof trainProjectionHead>>;
