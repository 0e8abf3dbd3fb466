/**
 * faceflow train: a projection head on top of the frozen base embedder, trained with the notebook's triplet
 * loss on a site's own labelled faces (one sub-folder per person), with CCTV-like augmentations. The head
 * folder it writes is what `--head <dir>` loads in every other command.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { EnginePool, FaceEngine, decodeImage, initRuntime, type RgbImage, type RunOptions, type EmbedderInfo } from '@faceflow/engine';
import { HEAD_KINDS, type HeadKind } from '@faceflow/engine/models';
import { alignDlibChip, type Face } from '@faceflow/engine/recognize';
import { scanIdentityFolders, embedIdentities, EmbeddingCache, trainHead, saveHead, lossCurveSvg, parseAugmentations, degradeImage, faceSizeOf, DEFAULT_AUGMENT_RANGES, DEFAULT_TRAIN_CONFIG, MINING_STRATEGIES, type BaseEmbedder, type MiningStrategy, type TrainConfig } from '@faceflow/engine/train';
import { FaceflowError } from '@faceflow/shared';
import { type CommandSpec, dropHelp, num, str, UsageError } from '../cli.js';
import { ENGINE_FLAGS, ENGINE_HELP, engineConfig, round } from '../engine-setup.js';

/** The face of a training image: the largest one containing the image centre, else the largest. */
function pickFace(faces: Face[], width: number, height: number): Face | undefined {
  const area = (f: Face): number => f.box.width * f.box.height;
  const central = faces.filter((f) => f.box.x <= width / 2 && f.box.x + f.box.width >= width / 2 && f.box.y <= height / 2 && f.box.y + f.box.height >= height / 2);
  const from = central.length > 0 ? central : faces;
  return from.reduce<Face | undefined>((best, f) => (!best || area(f) > area(best) ? f : best), undefined);
}

interface Engineish {
  run(images: RgbImage[], options?: RunOptions): Promise<Face[][]>;
  embedChips(chips: Uint8Array[]): Promise<Float32Array[]>;
  info: EmbedderInfo;
  close(): Promise<void>;
}

// train's --head is the kind of head it trains, not a head to apply: the engine's --head entry goes, whole
const HELP_WITHOUT_HEAD = dropHelp(ENGINE_HELP, 'head');

export const train: CommandSpec = {
  name: 'train',
  summary: "train a projection head with the triplet loss on a site's own labelled faces",
  usage: 'faceflow train --data <root, one sub-folder per identity> --out <dir> [--augment grayscale,lowres,...] [--json]',
  flags: {
    ...ENGINE_FLAGS,
    data: { type: 'string' },
    out: { type: 'string' },
    epochs: { type: 'string' },
    p: { type: 'string' },
    k: { type: 'string' },
    mining: { type: 'string' },
    seed: { type: 'string' },
    'val-fraction': { type: 'string' },
    augment: { type: 'string' },
    'augment-p': { type: 'string' },
    'augment-stage': { type: 'string' },
    copies: { type: 'string' },
    patience: { type: 'string' },
    monitor: { type: 'string' },
    head: { type: 'string' },
    dim: { type: 'string' },
    hidden: { type: 'string' },
    lr: { type: 'string' },
    alpha: { type: 'string' },
    steps: { type: 'string' },
    name: { type: 'string' },
    plot: { type: 'string' },
    cache: { type: 'string' },
    'no-cache': { type: 'boolean', default: false },
    'fallback-center': { type: 'string' },
  },
  help: [
    '  --data ROOT        training images, one sub-folder per identity (sub-folders may be symlinks);',
    '                     identities with one image and unreadable or faceless images are skipped with a warning',
    '  --out DIR          where the head goes: model.json + weights.bin (TF.js layers), head.json (thresholds,',
    '                     base model, config), report.json (history, warnings) and loss.png',
    '                     Two thresholds, both on the validation identities: the accuracy-optimal one (verify)',
    '                     and the distance at a false-accept rate of 1e-3 on their impostor pairs (identify and',
    '                     run); with under 1000 impostor pairs the latter is the smallest impostor distance',
    '                     (reported as unresolved: add validation identities)',
    `  --head KIND        ${HEAD_KINDS.join(' | ')} (default ${DEFAULT_TRAIN_CONFIG.head}); --dim D output size (default: the base's),`,
    '                     --hidden H hidden units of the mlp (default 256)',
    `  --epochs N         most epochs (default ${DEFAULT_TRAIN_CONFIG.epochs}); --patience N: stop after N epochs without`,
    `                     validation improvement (default ${DEFAULT_TRAIN_CONFIG.patience}); --monitor accuracy|loss (default ${DEFAULT_TRAIN_CONFIG.monitor})`,
    `  --p P --k K        batches of P identities x K images (default ${DEFAULT_TRAIN_CONFIG.p} x ${DEFAULT_TRAIN_CONFIG.k}); --steps N batches per epoch`,
    `  --mining M         ${MINING_STRATEGIES.join(' | ')} (default semi-hard, as FaceNet)`,
    `  --lr LR            Adam learning rate (default ${DEFAULT_TRAIN_CONFIG.lr}); --alpha A triplet margin (default 0.2)`,
    `  --val-fraction F   identities held out for validation, early stopping and the threshold (default ${DEFAULT_TRAIN_CONFIG.valFraction})`,
    '  --seed S           seed of every random choice (default 1): same data + seed = same head, bit for bit',
    '  --augment LIST     CCTV-like augmentations of the aligned chip: grayscale,lowres,blur,brightness,jpeg',
    `  --copies N         augmented copies per image besides the clean one (default 4 with --augment)`,
    `  --augment-p P      probability of each listed augmentation on a copy (default ${DEFAULT_AUGMENT_RANGES.p})`,
    '  --augment-stage S  chip (default): degrade the aligned chip (one detection per image); image: degrade',
    '                     the whole picture before detection and landmarks, as a camera would, so the copies',
    '                     also carry the alignment errors of degraded footage (one detection per copy)',
    '  --name NAME        the head\'s name (default: the --out folder\'s name)',
    '  --plot FILE        the loss curve PNG (default OUT/loss.png)',
    '  --cache DIR        base-embedding cache (default ~/.cache/faceflow/train); --no-cache to compute afresh',
    '  --fallback-center F  when no face is detected, use a centred box of F x the image side (e.g. 0.45 for LFW)',
    ...HELP_WITHOUT_HEAD,
  ],
  maxPositionals: 0,
  async run(ctx) {
    const data = str(ctx, 'data', true);
    const out = str(ctx, 'out', true);
    const kind = (str(ctx, 'head') ?? DEFAULT_TRAIN_CONFIG.head) as HeadKind;
    if (!(HEAD_KINDS as readonly string[]).includes(kind)) throw new UsageError(`--head must be ${HEAD_KINDS.join(' or ')} here (a head kind), got "${kind}"`);
    const mining = (str(ctx, 'mining') ?? DEFAULT_TRAIN_CONFIG.mining) as MiningStrategy;
    if (!(MINING_STRATEGIES as readonly string[]).includes(mining)) throw new UsageError(`--mining must be one of ${MINING_STRATEGIES.join(', ')}, got "${mining}"`);
    const monitor = str(ctx, 'monitor') ?? DEFAULT_TRAIN_CONFIG.monitor;
    if (monitor !== 'loss' && monitor !== 'accuracy') throw new UsageError(`--monitor must be loss or accuracy, got "${monitor}"`);
    const augmentSpec = str(ctx, 'augment');
    let augment: ReturnType<typeof parseAugmentations> = [];
    try {
      augment = augmentSpec ? parseAugmentations(augmentSpec) : [];
    } catch (e) {
      throw new UsageError((e as Error).message);
    }
    const copies = num(ctx, 'copies', { min: 0, max: 100, integer: true }) ?? (augment.length ? 4 : 0);
    if (copies > 0 && augment.length === 0) throw new UsageError('--copies needs --augment');
    const augmentP = num(ctx, 'augment-p', { min: 0, max: 1 }) ?? DEFAULT_AUGMENT_RANGES.p;
    const stage = str(ctx, 'augment-stage') ?? 'chip';
    if (stage !== 'chip' && stage !== 'image') throw new UsageError(`--augment-stage must be chip or image, got "${stage}"`);
    const fallback = num(ctx, 'fallback-center', { min: 0.05, max: 1 });
    const config: Partial<TrainConfig> = {
      head: kind,
      mining,
      monitor,
      epochs: num(ctx, 'epochs', { min: 1, max: 100000, integer: true }) ?? DEFAULT_TRAIN_CONFIG.epochs,
      p: num(ctx, 'p', { min: 2, max: 10000, integer: true }) ?? DEFAULT_TRAIN_CONFIG.p,
      k: num(ctx, 'k', { min: 2, max: 1000, integer: true }) ?? DEFAULT_TRAIN_CONFIG.k,
      seed: num(ctx, 'seed', { min: 0, max: 2 ** 32 - 1, integer: true }) ?? DEFAULT_TRAIN_CONFIG.seed,
      valFraction: num(ctx, 'val-fraction', { min: 0, max: 0.9 }) ?? DEFAULT_TRAIN_CONFIG.valFraction,
      patience: num(ctx, 'patience', { min: 1, max: 100000, integer: true }) ?? DEFAULT_TRAIN_CONFIG.patience,
      lr: num(ctx, 'lr', { min: 1e-7, max: 1 }) ?? DEFAULT_TRAIN_CONFIG.lr,
      alpha: num(ctx, 'alpha', { min: 0.01, max: 4 }) ?? DEFAULT_TRAIN_CONFIG.alpha,
    };
    const dim = num(ctx, 'dim', { min: 2, max: 4096, integer: true });
    if (dim !== undefined) config.dim = dim;
    const hidden = num(ctx, 'hidden', { min: 2, max: 4096, integer: true });
    if (hidden !== undefined) config.hidden = hidden;
    const steps = num(ctx, 'steps', { min: 1, max: 1_000_000, integer: true });
    if (steps !== undefined) config.stepsPerEpoch = steps;
    const name = str(ctx, 'name') ?? path.basename(path.resolve(out));
    if (!/^[A-Za-z0-9._-]{1,64}$/.test(name)) throw new UsageError(`--name must be 1-64 letters, digits, '.', '_' or '-', got "${name}"`);

    const scan = await scanIdentityFolders(data);
    const warnings = [...scan.warnings];
    const cacheDir = str(ctx, 'cache') ?? path.join(os.homedir(), '.cache', 'faceflow', 'train');
    const cache = ctx.values['no-cache'] ? undefined : await EmbeddingCache.open(path.join(cacheDir, 'embeddings.jsonl'));

    // the base engine: never with a head (a head is trained on the base embedder's own vectors)
    const cfg = engineConfig(ctx);
    delete cfg.head;
    const workers = num(ctx, 'workers', { min: 1, max: 256, integer: true }) ?? os.availableParallelism();
    let engine: Engineish;
    if (workers > 1) {
      const pool = await EnginePool.start(cfg, workers);
      engine = { run: (i, o) => pool.run(i, o), embedChips: (c) => pool.embedChips(c), info: pool.embedderInfo, close: () => pool.close() };
    } else {
      const e = await FaceEngine.load(cfg);
      engine = { run: (i, o) => e.run(i, o), embedChips: (c) => e.embedChips(c), info: e.embedderInfo, close: async () => e.dispose() };
    }
    const whole = ctx.values['whole-image'] === true;
    const flip = cfg.flip ?? true;
    const faceOf = async (image: RgbImage): Promise<Face | undefined> => {
      const [faces] = await engine.run([image], { embed: false, wholeImageIsFace: whole, ...(fallback ? { fallbackCenterFraction: fallback } : {}) });
      return pickFace(faces!, image.width, image.height);
    };
    const align = (image: RgbImage, face: Face): Uint8Array => alignDlibChip(image, face.landmarks, engine.info.chipSize, 0.25);
    const base: BaseEmbedder = {
      tag: JSON.stringify({ model: engine.info.name, flip, whole, fallback: fallback ?? null, detector: cfg.detector ?? null, pick: 'central-largest', chip: 'dlib-0.25' }),
      chipSize: engine.info.chipSize,
      chipPadding: 0.25,
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
    const images = scan.identities.reduce((s, i) => s + i.files.length, 0);
    const bar = ctx.progress(`embedding ${images} images x ${1 + copies}`, images);
    const started = Date.now();
    let set;
    try {
      set = await embedIdentities(scan.identities, base, { augment, copies, stage, seed: config.seed!, ranges: { ...DEFAULT_AUGMENT_RANGES, p: augmentP }, ...(cache ? { cache } : {}), concurrency: Math.max(2, workers * 2), onImage: () => bar.tick() });
    } finally {
      bar.done();
      await engine.close();
    }
    const embedSeconds = (Date.now() - started) / 1000;
    warnings.push(...set.warnings);
    for (const w of warnings.slice(0, 10)) process.stderr.write(`faceflow train: warning: ${w}\n`);
    if (warnings.length > 10) process.stderr.write(`faceflow train: warning: ... and ${warnings.length - 10} more (all in ${path.join(out, 'report.json')})\n`);

    // the head trains in this thread, on vectors
    await initRuntime(cfg.backend === undefined ? {} : { backend: cfg.backend });
    const logEpochs = !ctx.json && !(process.stderr.isTTY && !ctx.values['no-progress']);
    const epochBar = ctx.progress('training (epochs)', config.epochs!);
    const trainStarted = Date.now();
    let result;
    try {
      result = await trainHead(set.identities, config, {
        onEpoch: (r, best) => {
          if (r.epoch > 0) epochBar.tick();
          if (logEpochs || process.env.FACEFLOW_TRAIN_LOG) {
            process.stderr.write(
              `epoch ${r.epoch}: train loss ${r.trainLoss === null ? '-' : r.trainLoss.toFixed(4)}, val loss ${r.valLoss.toFixed(4)}, val accuracy ${(r.valAccuracy * 100).toFixed(2)}% (threshold ${r.valThreshold.toFixed(3)}, AUC ${r.valAuc.toFixed(4)})${best ? ' *' : ''}\n`,
            );
          }
        },
      });
    } finally {
      epochBar.done();
    }
    const trainSeconds = (Date.now() - trainStarted) / 1000;
    const metrics = (m: { loss: number; accuracy: number; threshold: number; auc: number }): Record<string, number> => ({
      loss: round(m.loss, 5), accuracy: round(m.accuracy, 5), threshold: round(m.threshold, 4), auc: round(m.auc, 5),
    });
    const trainingRecord = {
      data,
      identities: set.identities.length,
      images: set.stats.usedImages,
      skippedImages: set.stats.skippedImages,
      augment,
      augmentP,
      augmentStage: stage,
      copies,
      flip,
      fallbackCenter: fallback ?? null,
      config: result.config,
      epochsRun: result.history.length - 1,
      bestEpoch: result.bestEpoch,
      stoppedEarly: result.stoppedEarly,
    };
    const validation = {
      identities: result.split.validation.length,
      pairs: result.validationPairs,
      monitor,
      improved: result.improved,
      base: { ...metrics(result.base), distanceAtFar1e3: round(result.baseFar.distance, 4) },
      head: { ...metrics(result.best), distanceAtFar1e3: round(result.far.distance, 4) },
      impostorPairs: result.far.impostorPairs,
      farResolved: result.far.resolved,
    };
    if (!result.far.resolved) {
      const w = `only ${result.far.impostorPairs} impostor pairs among the ${result.thresholdSource.replace('-', ' ')}: FAR 1e-3 needs 1000; the identify threshold is the smallest impostor distance (no false accept among ${result.far.impostorPairs}), add identities or raise --val-fraction to resolve it`;
      warnings.push(w);
      process.stderr.write(`faceflow train: warning: ${w}\n`);
    }
    let meta;
    try {
      meta = await saveHead(result.model, out, {
        name,
        baseModel: engine.info.name,
        kind,
        inputDim: result.inputDim,
        dim: result.dim,
        ...(kind === 'mlp' ? { hidden: result.config.hidden ?? 256 } : {}),
        threshold: round(result.threshold, 6),
        thresholdSource: result.thresholdSource,
        distanceAtFar1e3: round(result.distanceAtFar1e3, 6),
        far: { ...result.far, distance: round(result.far.distance, 6) },
        validation,
        training: trainingRecord,
      });
    } finally {
      result.model.dispose();
    }
    const plot = str(ctx, 'plot') ?? path.join(out, 'loss.png');
    const svg = lossCurveSvg(result.history, result.bestEpoch, `faceflow train ${name}: ${kind} head, ${mining} mining, best epoch ${result.bestEpoch}`);
    try {
      await mkdir(path.dirname(path.resolve(plot)), { recursive: true });
      await writeFile(plot, await sharp(Buffer.from(svg)).png().toBuffer());
    } catch (e) {
      throw new FaceflowError('INVALID_ARGUMENT', `cannot write plot ${plot}: ${(e as Error).message}`, { cause: e });
    }
    const report = {
      head: out,
      embedder: `${engine.info.name}+head:${meta.name}@${meta.weightsSha256.slice(0, 8)}`,
      threshold: meta.threshold,
      thresholdSource: meta.thresholdSource,
      distanceAtFar1e3: meta.distanceAtFar1e3,
      far: meta.far,
      validation,
      training: trainingRecord,
      split: result.split,
      embedding: { ...set.stats, cache: cache ? path.join(cacheDir, 'embeddings.jsonl') : null, seconds: round(embedSeconds, 1) },
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
    const pct = (v: number): string => `${(v * 100).toFixed(2)}%`;
    ctx.out(
      [
        `head written to ${out} (${kind}, ${result.inputDim} -> ${result.dim}), embedder name ${report.embedder}`,
        `${set.identities.length} identities (${result.split.train.length} training, ${result.split.validation.length} validation), ${set.stats.usedImages} images x ${1 + copies} copies; ${warnings.length} warning(s)`,
        `best epoch ${result.bestEpoch} of ${result.history.length - 1}${result.stoppedEarly ? ' (stopped early)' : ''}${result.improved ? '' : ': no epoch beat the initial head on validation'}`,
        `validation (${result.thresholdSource}): base ${pct(result.base.accuracy)} (AUC ${result.base.auc.toFixed(4)}, loss ${result.base.loss.toFixed(4)}) -> head ${pct(result.best.accuracy)} (AUC ${result.best.auc.toFixed(4)}, loss ${result.best.loss.toFixed(4)})`,
        `thresholds: ${meta.threshold.toFixed(4)} (verify, accuracy-optimal), ${meta.distanceAtFar1e3!.toFixed(4)} (identify and run, FAR 1e-3 on ${result.far.impostorPairs} impostor pairs${result.far.resolved ? '' : ': unresolved'}); loss curve ${plot}`,
      ].join('\n'),
      report,
    );
  },
};
