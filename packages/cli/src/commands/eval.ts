/** faceflow eval lfw | det: the accuracy numbers in BENCHMARKS.md come from here. */
import { runDetectionEval, runLfwEval } from '@faceflow/engine/eval';
import { parseDegrade } from '@faceflow/engine/image';
import { type CommandSpec, num, str, UsageError, runGroup } from '../cli.js';
import { ENGINE_FLAGS, ENGINE_HELP, makeRunner } from '../engine-setup.js';
import { evalSeg } from './segment.js';

const lfw: CommandSpec = {
  name: 'eval lfw',
  summary: 'LFW pair matching: 10-fold cross-validated accuracy on View 2, or accuracy at the calibrated threshold on View 1',
  usage: 'faceflow eval lfw --images <root> --pairs <file> [--plot roc.png] [--threshold T | --fit] [--json]',
  flags: {
    ...ENGINE_FLAGS,
    images: { type: 'string' },
    pairs: { type: 'string' },
    plot: { type: 'string' },
    threshold: { type: 'string' },
    fit: { type: 'boolean', default: false },
    limit: { type: 'string' },
    degrade: { type: 'string' },
    'all-pairs': { type: 'boolean', default: false },
  },
  help: [
    '  --images ROOT      LFW image root (ROOT/<Name>/<Name>_NNNN.jpg)',
    '  --pairs FILE       pairs.txt (first line "10 300": 10-fold protocol) or pairsDev*.txt (first line "N")',
    '  --plot FILE        draw the ROC curve (PNG)',
    '  --threshold T      View 1: score at this threshold instead of the calibrated one',
    '  --fit              View 1: report accuracy at the best threshold on these same pairs (optimistic;',
    '                     this is how calibration is produced, on pairsDevTrain)',
    '  --limit N          only the first N pairs of each class and fold (quick checks)',
    '  --degrade OPS      degrade every image before the engine sees it, e.g. grayscale,lowres32 (CCTV-like:',
    '                     grayscale, lowres<N> = face ~N px across then back up, blur<S>, brightness<G>,',
    '                     jpeg<Q>); LFW faces are taken to be 40% of the image side (~100 px of 250)',
    '  --all-pairs        also score every pair of the embedded images of two different people (millions of',
    '                     impostor pairs, not the file\'s 1000): distances at false-accept rates 1e-4 to 1e-6,',
    '                     which the file\'s pairs cannot resolve ("allPairs" in the JSON)',
    '  A face that is not detected falls back to the centred 45% box (LFW is centred by construction); such',
    '  images are counted in "fallbackImages".',
    ...ENGINE_HELP,
  ],
  maxPositionals: 0,
  async run(ctx) {
    const root = str(ctx, 'images', true);
    const pairsFile = str(ctx, 'pairs', true);
    const limit = num(ctx, 'limit', { min: 1, integer: true });
    const given = num(ctx, 'threshold', { min: 0, max: 2 });
    if (given !== undefined && ctx.values.fit) throw new UsageError('--threshold and --fit exclude each other');
    const degradeSpec = str(ctx, 'degrade');
    const plot = str(ctx, 'plot');
    const { figures, report } = await runLfwEval(() => makeRunner(ctx, true), {
      imagesRoot: root, pairsFile, fit: ctx.values.fit === true, wholeImage: ctx.values['whole-image'] === true, allPairs: ctx.values['all-pairs'] === true,
      ...(limit !== undefined ? { limit } : {}),
      ...(given !== undefined ? { threshold: given } : {}),
      ...(degradeSpec !== undefined ? { degrade: parseDegrade(degradeSpec) } : {}),
      ...(plot ? { plot } : {}),
      progress: (label, total) => ctx.progress(label, total),
    });
    ctx.out(
      `${report.protocol}: accuracy ${(report.accuracy * 100).toFixed(2)}% ± ${(report.std * 100).toFixed(2)} at threshold ${report.threshold.toFixed(4)} (${report.thresholdSource}); AUC ${report.auc.toFixed(4)}; TAR@FAR=1e-3 ${(report.tarAtFar1e3 * 100).toFixed(2)}%${report.farResolved ? '' : ' (FAR not resolved: too few impostor pairs)'}; ${report.failedPairs} failed pairs; ${figures.fallbackImages} fallback images`,
      figures,
    );
  },
};

const det: CommandSpec = {
  name: 'eval det',
  summary: 'face detection recall and false positives per image at IoU 0.5, raw and with the detector\'s box correction',
  usage: 'faceflow eval det --images <dir> --boxes <file> [--min-face PX] [--detector D] [--fit-boxes] [--json]',
  flags: {
    ...ENGINE_FLAGS,
    images: { type: 'string' },
    boxes: { type: 'string', multiple: true },
    'only-listed': { type: 'boolean', default: false },
    iou: { type: 'string' },
    'fit-boxes': { type: 'boolean', default: false },
    'max-fp': { type: 'string' },
    'box-corrections': { type: 'string' },
  },
  help: [
    '  --images DIR       the images named in the boxes file',
    '  --boxes FILE       lines "image x_min y_min x_max y_max", or dlib imglab XML (<box top left width height>);',
    '                     may be given more than once (e.g. dlib_faces training.xml and testing.xml)',
    '  --only-listed      evaluate only the images the boxes files name (a folder with unlabelled images)',
    '  --iou T            IoU for a match (default 0.5)',
    '  --max-fp F         also report recall at the lowest score threshold with <= F false positives per image',
    '                     (default 0.3)',
    '  --fit-boxes        fit the detector\'s box correction (width and height scale about the centre) on these',
    '                     images, maximising recall at <= --max-fp, and store it with the detector; without it the',
    '                     stored correction is applied. Raw (uncorrected) figures are reported either way',
    '  --box-corrections FILE  where corrections are stored (default the engine\'s models/box-corrections.json)',
    '  Every image in DIR counts (images with no face add only false positives). msPerImage is wall time per',
    '  image of the detection pass over all workers; on a shared machine it is noisy.',
    ...ENGINE_HELP,
  ],
  maxPositionals: 0,
  async run(ctx) {
    const dir = str(ctx, 'images', true);
    const boxesFiles = (ctx.values.boxes as string[] | undefined) ?? [];
    if (boxesFiles.length === 0) throw new UsageError('--boxes is required');
    const iou = num(ctx, 'iou', { min: 0.05, max: 0.95 });
    const maxFp = num(ctx, 'max-fp', { min: 0, max: 100 });
    const correctionsFile = str(ctx, 'box-corrections');
    const minFace = num(ctx, 'min-face', { min: 8, max: 10000 });
    const minScore = num(ctx, 'min-score', { min: 0.01, max: 0.99 });
    const r = await runDetectionEval(() => makeRunner(ctx, true), {
      imagesDir: dir, boxesFiles, onlyListed: ctx.values['only-listed'] === true, fitBoxes: ctx.values['fit-boxes'] === true,
      ...(iou !== undefined ? { iou } : {}),
      ...(maxFp !== undefined ? { maxFp } : {}),
      ...(correctionsFile !== undefined ? { correctionsFile } : {}),
      ...(minFace !== undefined ? { minFace } : {}),
      ...(minScore !== undefined ? { minScore } : {}),
      progress: (label, total) => ctx.progress(label, total),
    });
    const pct = (v: number) => `${(v * 100).toFixed(1)}%`;
    const c = r.boxCorrection;
    const fixed = c.widthScale !== 1 || c.heightScale !== 1;
    const at = r.atMaxFalsePositives;
    ctx.out(
      [
        `${r.detector} on ${r.runtime}${r.provider ? ` (${r.provider})` : ''}, ${r.images} images, IoU ${r.iou}, box correction ${c.widthScale}x width, ${c.heightScale}x height (${c.source})`,
        `recall ${pct(r.recall)} (${r.truePositives}/${r.groundTruth}), ${r.falsePositivesPerImage.toFixed(3)} false positives per image, precision ${pct(r.precision)}${fixed ? `; raw boxes: recall ${pct(r.raw.recall)}, ${r.raw.falsePositivesPerImage.toFixed(3)} FP/image` : ''}`,
        `at <= ${at.maxFpPerImage} FP/image: recall ${pct(at.corrected.recall)} at score >= ${at.corrected.threshold.toFixed(3)} (${at.corrected.falsePositivesPerImage.toFixed(3)} FP/image)${fixed ? `; raw boxes: ${pct(at.raw.recall)} at score >= ${at.raw.threshold.toFixed(3)}` : ''}`,
        `${r.msPerImage} ms per image (wall, ${r.workers} worker(s))`,
      ].join('\n'),
      r,
    );
  },
};

export const evalCommand = {
  name: 'eval',
  subcommands: { lfw, det, seg: evalSeg } as Record<string, CommandSpec>,
};

export async function runEval(argv: string[]): Promise<number> {
  return runGroup('eval', EVAL_SUMMARY, evalCommand.subcommands, argv);
}

export const EVAL_SUMMARY = 'measure: eval lfw (face verification), eval det (face detection), eval seg (face segmentation)';
