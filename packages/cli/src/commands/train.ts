/**
 * faceflow train: a projection head on top of the frozen base embedder, trained with the notebook's triplet
 * loss on a site's own labelled faces (one sub-folder per person), with CCTV-like augmentations. The head
 * folder it writes is what `--head <dir>` loads in every other command.
 */
import os from 'node:os';
import path from 'node:path';
import { HEAD_KINDS } from '@faceflow/engine/models';
import { openEngine } from '@faceflow/engine/recognize';
import { trainProjectionHead, parseAugmentations, epochLine, DEFAULT_AUGMENT_RANGES, DEFAULT_TRAIN_CONFIG, MINING_STRATEGIES } from '@faceflow/engine/train';
import { type HeadKind } from '@faceflow/engine/models';
import { type Augmentation, type MiningStrategy, type TrainConfig } from '@faceflow/engine/train';
import { type CommandSpec, dropHelp, num, str, UsageError } from '../cli.js';
import { ENGINE_FLAGS, ENGINE_HELP, engineConfig } from '../engine-setup.js';

const TRAIN_STRING_FLAGS = ['data', 'out', 'epochs', 'p', 'k', 'mining', 'seed', 'val-fraction', 'augment', 'augment-p', 'augment-stage', 'copies', 'patience',
  'monitor', 'head', 'dim', 'hidden', 'lr', 'alpha', 'steps', 'name', 'plot', 'cache', 'fallback-center'];

// train's --head is the kind of head it trains, not a head to apply: the engine's --head entry goes, whole
const HELP_WITHOUT_HEAD = dropHelp(ENGINE_HELP, 'head');

export const train: CommandSpec = {
  name: 'train',
  summary: "train a projection head with the triplet loss on a site's own labelled faces",
  usage: 'faceflow train --data <root, one sub-folder per identity> --out <dir> [--augment grayscale,lowres,...] [--json]',
  flags: {
    ...ENGINE_FLAGS,
    ...Object.fromEntries(TRAIN_STRING_FLAGS.map((f) => [f, { type: 'string' as const }])),
    'no-cache': { type: 'boolean', default: false },
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
    let augment: Augmentation[] = [];
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
      head: kind, mining, monitor,
      epochs: num(ctx, 'epochs', { min: 1, max: 100000, integer: true }) ?? DEFAULT_TRAIN_CONFIG.epochs,
      p: num(ctx, 'p', { min: 2, max: 10000, integer: true }) ?? DEFAULT_TRAIN_CONFIG.p,
      k: num(ctx, 'k', { min: 2, max: 1000, integer: true }) ?? DEFAULT_TRAIN_CONFIG.k,
      seed: num(ctx, 'seed', { min: 0, max: 2 ** 32 - 1, integer: true }) ?? DEFAULT_TRAIN_CONFIG.seed,
      valFraction: num(ctx, 'val-fraction', { min: 0, max: 0.9 }) ?? DEFAULT_TRAIN_CONFIG.valFraction,
      patience: num(ctx, 'patience', { min: 1, max: 100000, integer: true }) ?? DEFAULT_TRAIN_CONFIG.patience,
      lr: num(ctx, 'lr', { min: 1e-7, max: 1 }) ?? DEFAULT_TRAIN_CONFIG.lr,
      alpha: num(ctx, 'alpha', { min: 0.01, max: 4 }) ?? DEFAULT_TRAIN_CONFIG.alpha,
    };
    for (const [flag, key, min, max] of [['dim', 'dim', 2, 4096], ['hidden', 'hidden', 2, 4096], ['steps', 'stepsPerEpoch', 1, 1_000_000]] as const) {
      const v = num(ctx, flag, { min, max, integer: true });
      if (v !== undefined) config[key] = v;
    }
    const name = str(ctx, 'name') ?? path.basename(path.resolve(out));
    if (!/^[A-Za-z0-9._-]{1,64}$/.test(name)) throw new UsageError(`--name must be 1-64 letters, digits, '.', '_' or '-', got "${name}"`);

    // the base engine: never with a head (a head is trained on the base embedder's own vectors)
    const cfg = engineConfig(ctx);
    delete cfg.head;
    const workers = num(ctx, 'workers', { min: 1, max: 256, integer: true }) ?? os.availableParallelism();
    const cache = str(ctx, 'cache');
    const plot = str(ctx, 'plot');
    const logEpochs = !ctx.json && !(process.stderr.isTTY && !ctx.values['no-progress']);
    const run = await trainProjectionHead(() => openEngine(cfg, workers), {
      data, out, name, config, augment, copies, augmentP, stage, engine: cfg, workers,
      wholeImage: ctx.values['whole-image'] === true,
      ...(fallback !== undefined ? { fallbackCenter: fallback } : {}),
      ...(ctx.values['no-cache'] ? { cacheDir: null } : cache !== undefined ? { cacheDir: cache } : {}),
      ...(plot !== undefined ? { plot } : {}),
      progress: (label, total) => ctx.progress(label, total),
      warn: (w) => process.stderr.write(`faceflow train: warning: ${w}\n`),
      onEpoch: (r, best) => void ((logEpochs || process.env.FACEFLOW_TRAIN_LOG) && process.stderr.write(`${epochLine(r, best)}\n`)),
    });
    const { report, base, head } = run;
    const t = report.training;
    const pct = (v: number): string => `${(v * 100).toFixed(2)}%`;
    ctx.out(
      [
        `head written to ${out} (${kind}, ${run.inputDim} -> ${run.dim}), embedder name ${report.embedder}`,
        `${t.identities} identities (${report.split.train.length} training, ${report.split.validation.length} validation), ${t.images} images x ${1 + copies} copies; ${report.warnings.length} warning(s)`,
        `best epoch ${t.bestEpoch} of ${t.epochsRun}${t.stoppedEarly ? ' (stopped early)' : ''}${report.validation.improved ? '' : ': no epoch beat the initial head on validation'}`,
        `validation (${report.thresholdSource}): base ${pct(base.accuracy)} (AUC ${base.auc.toFixed(4)}, loss ${base.loss.toFixed(4)}) -> head ${pct(head.accuracy)} (AUC ${head.auc.toFixed(4)}, loss ${head.loss.toFixed(4)})`,
        `thresholds: ${report.threshold.toFixed(4)} (verify, accuracy-optimal), ${report.distanceAtFar1e3!.toFixed(4)} (identify and run, FAR 1e-3 on ${report.far.impostorPairs} impostor pairs${report.far.resolved ? '' : ': unresolved'}); loss curve ${report.plot}`,
      ].join('\n'),
      report,
    );
  },
};
