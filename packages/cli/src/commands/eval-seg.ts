/** eval seg: face segmentation measured against LFW Part Labels (the run and its report are the engine's). */
import { runSegmentationEval, segmentationReportJson } from '@faceflow/engine/eval';
import { SEG_VARIANTS, variantBase } from '@faceflow/engine/segment';
import { type CommandSpec, num, str } from '../cli.js';
import { ENGINE_FLAGS, ENGINE_HELP, round } from '../engine-setup.js';
import { CLASSIFIER_HELP, loadTools, parseClassifier, parseVariant } from './seg-tools.js';
import { parseSplit } from './train-seg.js';

export const evalSeg: CommandSpec = {
  name: 'eval seg',
  summary: 'face segmentation against LFW Part Labels: mean IoU and precision vs the skin label',
  usage: 'faceflow eval seg --images <dir> --masks <dir> [--method mesh+grow[,mesh,...]] [--limit N] [--scale S] [--json]',
  flags: {
    ...ENGINE_FLAGS,
    images: { type: 'string' },
    masks: { type: 'string' },
    method: { type: 'string' },
    classifier: { type: 'string' },
    'skin-classifier': { type: 'string' },
    split: { type: 'string' },
    limit: { type: 'string' },
    scale: { type: 'string' },
    'per-image': { type: 'boolean', default: false },
    warmup: { type: 'string' },
  },
  help: [
    '  --images DIR       photos (<name>.jpg)',
    '  --masks DIR        label PNGs of the same names (<name>.png): red hair, green skin, blue background',
    `  --method LIST      comma-separated, any of ${SEG_VARIANTS.join(', ')} (default mesh+grow)`,
    ...CLASSIFIER_HELP,
    '  --split S          all (default), or even / odd: the images at even / odd positions (0-based) sorted by',
    '                     name (faceflow train seg fits on the even ones by default; odd is the held-out check)',
    '  --limit N          only the first N images (sorted by name)',
    '  --warmup N         untimed runs of every method on the first N images before timing (default 10)',
    '  --scale S          enlarge every image (Lanczos) and its labels (nearest) S times first, 1..4 (default 1):',
    '                     the cost of segmenting large faces (LFW faces are ~100 px; x3 is a 300 px face)',
    '  --per-image        add every image\'s scores to the JSON',
    '  Scores the face nearest the image centre (if none is detected, the centred 45% box, counted in',
    '  "fallbacks"). The skin label includes the neck: "iou"/"precision" are against the whole skin label;',
    '  "iouFace"/"precisionFace" against the skin above the jaw line of the 68 landmarks (the face without',
    '  the neck; a model\'s estimate of the chin, not a human label). Also reports per-face time of each',
    '  method and of the embedder on the same faces, one face at a time, as wall clock (msPerFace) and as this',
    '  process\'s CPU time (cpuMsPerFace, steadier when other jobs share the cores).',
    ...ENGINE_HELP,
  ],
  maxPositionals: 0,
  async run(ctx) {
    const variants = (str(ctx, 'method') ?? 'mesh+grow').split(',').map((s) => parseVariant(s.trim()));
    const classifier = parseClassifier(ctx);
    const split = parseSplit(str(ctx, 'split'), 'all');
    const limit = num(ctx, 'limit', { min: 1, integer: true });
    let info: { embedder: string; backend: string } | undefined;
    const openTools = async () => {
      const tools = await loadTools(ctx, variants.some((v) => variantBase(v) === 'mesh'), classifier);
      info = { embedder: tools.engine.embedderInfo.name, backend: tools.engine.runtime.backend };
      return tools;
    };
    const report = await runSegmentationEval(openTools, {
      imagesDir: str(ctx, 'images', true),
      masksDir: str(ctx, 'masks', true),
      methods: variants,
      split,
      ...(limit !== undefined ? { limit } : {}),
      scale: num(ctx, 'scale', { min: 1, max: 4 }) ?? 1,
      warmup: num(ctx, 'warmup', { min: 1, max: 1000, integer: true }) ?? 10,
      perImage: ctx.values['per-image'] === true,
      progress: (label, total) => ctx.progress(label, total),
    });
    const result = segmentationReportJson(report, { ...(classifier ? { classifier } : {}), ...info! });
    ctx.out(
      [
        `${report.images} images (${report.fallbacks} with no detection: centred box), embedder ${round(report.embedMsPerFace, 1)} ms/face`,
        ...result.methods.map(
          (m) =>
            `  ${m.method.padEnd(15)} IoU ${m.meanIou.toFixed(3)} precision ${m.meanPrecision.toFixed(3)} | face only (above the jaw): IoU ${m.meanIouFace.toFixed(3)} precision ${m.meanPrecisionFace.toFixed(3)} | ${m.msPerFace} ms/face (${(m.costVsEmbedder * 100).toFixed(0)}% of the embedder)`,
        ),
      ].join('\n'),
      result,
    );
  },
};
