/** faceflow eval lfw | det: the accuracy numbers in BENCHMARKS.md come from here. */
import { readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { decodeImage, type Box } from '@faceflow/engine';
import { readPairs, lfwImagePath, evaluatePairs, roc, rocSvg, readBoxFile, matchDetections, summarise, correctBox, fitBoxCorrection, operatingPoint, readBoxCorrections, writeBoxCorrection, DEFAULT_BOX_CORRECTIONS, IDENTITY_CORRECTION, type BoxCorrection, type DetectionRun, type ScoredBox, allPairsImpostors } from '@faceflow/engine/eval';
import { l2Distance, calibrationFor } from '@faceflow/engine/match';
import { parseDegrade, degradeImage, degradeLabel } from '@faceflow/engine/train';
import { FaceflowError } from '@faceflow/shared';
import { type CommandSpec, num, str, UsageError, runGroup, mapLimit } from '../cli.js';
import { ENGINE_FLAGS, ENGINE_HELP, centreFace, makeRunner, round } from '../engine-setup.js';
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
    const degrade = degradeSpec === undefined ? [] : parseDegrade(degradeSpec);
    const set = await readPairs(pairsFile);
    if (limit !== undefined) {
      const counts = new Map<string, number>();
      set.pairs = set.pairs.filter((p) => {
        const key = `${p.fold}/${p.same}`;
        const n = counts.get(key) ?? 0;
        counts.set(key, n + 1);
        return n < limit;
      });
    }
    const files = new Set<string>();
    for (const p of set.pairs) {
      files.add(lfwImagePath(root, p.a.name, p.a.index));
      files.add(lfwImagePath(root, p.b.name, p.b.index));
    }
    const runner = await makeRunner(ctx, true);
    const embeddings = new Map<string, Float32Array | null>();
    let fallbackImages = 0;
    const missing: string[] = [];
    const bar = ctx.progress('embedding', files.size);
    const started = Date.now();
    try {
      await mapLimit([...files], 16, async (file) => {
          try {
            const decoded = await decodeImage(file);
            const image = degrade.length ? await degradeImage(decoded, degrade, 0.4 * Math.min(decoded.width, decoded.height)) : decoded;
            const [faces] = await runner.run([image], { fallbackCenterFraction: 0.45, wholeImageIsFace: ctx.values['whole-image'] === true });
            const face = centreFace(faces!, image.width, image.height);
            if (face && face.score === 0) fallbackImages++;
            embeddings.set(file, face?.embedding ?? null);
          } catch (e) {
            if (e instanceof FaceflowError && e.code === 'NOT_FOUND') missing.push(file);
            else throw e;
            embeddings.set(file, null);
          } finally {
            bar.tick();
          }
        });
    } finally {
      bar.done();
      await runner.close();
    }
    if (missing.length > 0) throw new FaceflowError('NOT_FOUND', `${missing.length} image(s) of the pairs are missing under ${root}, e.g. ${missing[0]}`);
    const seconds = (Date.now() - started) / 1000;
    const scored = set.pairs.map((p) => {
      const a = embeddings.get(lfwImagePath(root, p.a.name, p.a.index));
      const b = embeddings.get(lfwImagePath(root, p.b.name, p.b.index));
      // an unusable pair counts as wrong: distance on the wrong side of any threshold
      if (!a || !b) return { distance: p.same ? 4 : 0, same: p.same, fold: p.fold, failed: true };
      return { distance: l2Distance(a, b), same: p.same, fold: p.fold };
    });
    const model = runner.embedder.name;
    const calibrated = ctx.values.fit ? undefined : (given ?? runner.embedder.threshold ?? calibrationFor(model)?.threshold);
    if (set.kind === 'view1' && calibrated === undefined && !ctx.values.fit) {
      throw new FaceflowError('INVALID_CONFIG', `model "${model}" has no calibrated threshold: pass --threshold or --fit`);
    }
    const report = evaluatePairs(set, scored, calibrated);
    const plot = str(ctx, 'plot');
    if (plot) {
      const svg = rocSvg(roc(scored), `LFW ${path.basename(pairsFile)}: acc ${(report.accuracy * 100).toFixed(2)}%, AUC ${report.auc.toFixed(4)}`);
      try {
        await writeFile(plot, await sharp(Buffer.from(svg)).png().toBuffer());
      } catch (e) {
        throw new FaceflowError('INVALID_ARGUMENT', `cannot write plot ${plot}: ${(e as Error).message}`, { cause: e });
      }
    }
    const out = {
      model,
      pairsFile,
      ...(degrade.length ? { degrade: degradeLabel(degrade) } : {}),
      images: files.size,
      fallbackImages,
      seconds: round(seconds, 1),
      ...report,
      accuracy: round(report.accuracy, 5),
      std: round(report.std, 5),
      threshold: round(report.threshold, 4),
      bestAccuracy: round(report.bestAccuracy, 5),
      bestThreshold: round(report.bestThreshold, 4),
      auc: round(report.auc, 5),
      tarAtFar1e3: round(report.tarAtFar1e3, 5),
      thresholdAtFar1e3: round(report.thresholdAtFar1e3, 4),
      ...(ctx.values['all-pairs'] ? { allPairs: allPairsImpostors(embeddings) } : {}),
    };
    ctx.out(
      `${report.protocol}: accuracy ${(report.accuracy * 100).toFixed(2)}% ± ${(report.std * 100).toFixed(2)} at threshold ${report.threshold.toFixed(4)} (${report.thresholdSource}); AUC ${report.auc.toFixed(4)}; TAR@FAR=1e-3 ${(report.tarAtFar1e3 * 100).toFixed(2)}%${report.farResolved ? '' : ' (FAR not resolved: too few impostor pairs)'}; ${report.failedPairs} failed pairs; ${fallbackImages} fallback images`,
      out,
    );
  },
};

/** The lowest score the sweep for `--max-fp` looks at (the operating point is read off this curve). */
const SWEEP_MIN_SCORE = 0.3;

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
    const boxesFile = boxesFiles.join(',');
    const truth = new Map<string, Box[]>();
    for (const f of boxesFiles) {
      for (const [k, v] of await readBoxFile(f)) truth.set(k, [...(truth.get(k) ?? []), ...v]);
    }
    const iouT = num(ctx, 'iou', { min: 0.05, max: 0.95 }) ?? 0.5;
    const maxFp = num(ctx, 'max-fp', { min: 0, max: 100 }) ?? 0.3;
    const correctionsFile = str(ctx, 'box-corrections');
    let names: string[];
    try {
      names = (await readdir(dir)).filter((f) => /\.(jpe?g|png|webp)$/i.test(f)).sort();
    } catch (e) {
      throw new FaceflowError('NOT_FOUND', `cannot read folder ${dir}`, { cause: e });
    }
    const missing = [...truth.keys()].filter((k) => !names.includes(k));
    if (missing.length) throw new FaceflowError('NOT_FOUND', `${missing.length} image(s) named in the boxes file are not in ${dir}, e.g. ${missing[0]}`);
    if (ctx.values['only-listed']) names = names.filter((n) => truth.has(n));
    const corrections = await readBoxCorrections(correctionsFile);
    const runner = await makeRunner(ctx, true);
    const detector = runner.models.detector;
    const minScore = num(ctx, 'min-score', { min: 0.01, max: 0.99 });
    const sweepMin = Math.min(SWEEP_MIN_SCORE, minScore ?? 1);
    // pass 1: the detector as configured (the headline figures, timed); pass 2: down to sweepMin, for the
    // operating point and the fit (a separate pass: BlazeFace's weighted NMS merges differently when more
    // candidates pass the threshold)
    const headline = new Map<string, ScoredBox[]>();
    const sweep = new Map<string, ScoredBox[]>();
    let wallMs = 0;
    const bar = ctx.progress('detecting', 2 * names.length);
    try {
      for (const [pass, into] of [[undefined, headline], [sweepMin, sweep]] as const) {
        const t0 = performance.now();
        await mapLimit(names, 8, async (name) => {
          const image = await decodeImage(path.join(dir, name));
          const [faces] = await runner.run([image], { detectOnly: true, ...(pass !== undefined ? { minScore: pass } : {}) });
          into.set(name, faces!.map((f) => ({ box: f.box, score: f.score })));
          bar.tick();
        });
        if (pass === undefined) wallMs = performance.now() - t0;
      }
    } finally {
      bar.done();
      await runner.close();
    }
    const sweepRun: DetectionRun = { images: names.map((n) => ({ image: n, detections: sweep.get(n)!, truth: truth.get(n) ?? [] })) };
    let correction: BoxCorrection;
    let correctionSource: string;
    if (ctx.values['fit-boxes']) {
      const fit = fitBoxCorrection(sweepRun, maxFp, iouT);
      correction = { widthScale: fit.widthScale, heightScale: fit.heightScale };
      const minFace = num(ctx, 'min-face', { min: 8, max: 10000 });
      await writeBoxCorrection(
        detector.name,
        {
          ...correction,
          images: dir,
          boxes: boxesFile,
          ...(minFace !== undefined ? { minFace } : {}),
          maxFpPerImage: maxFp,
          iou: iouT,
          rawRecall: round(operatingPoint(sweepRun, IDENTITY_CORRECTION, maxFp, iouT).recall, 4),
          recall: round(fit.point.recall, 4),
          date: new Date().toISOString().slice(0, 10),
        },
        correctionsFile,
      );
      correctionSource = `fitted on these images and stored in ${correctionsFile ?? DEFAULT_BOX_CORRECTIONS}`;
    } else {
      const stored = corrections.detectors[detector.name];
      correction = stored ? { widthScale: stored.widthScale, heightScale: stored.heightScale } : IDENTITY_CORRECTION;
      correctionSource = stored ? `stored (fitted on ${stored.boxes}, ${stored.date})` : 'none stored for this detector: figures are raw';
    }
    const figures = (c: BoxCorrection) => {
      const counts = { images: 0, groundTruth: 0, truePositives: 0, falsePositives: 0 };
      const perImage: Array<{ image: string; faces: number; detections: number; tp: number; fp: number }> = [];
      for (const name of names) {
        const gt = truth.get(name) ?? [];
        const dets = headline.get(name)!.map((d) => ({ box: correctBox(d.box, c), score: d.score }));
        const { tp, fp } = matchDetections(dets, gt, iouT);
        counts.images++;
        counts.groundTruth += gt.length;
        counts.truePositives += tp;
        counts.falsePositives += fp;
        perImage.push({ image: name, faces: gt.length, detections: dets.length, tp, fp });
      }
      return { ...summarise(counts), perImage };
    };
    const corrected = figures(correction);
    const raw = figures(IDENTITY_CORRECTION);
    const atMax = { corrected: operatingPoint(sweepRun, correction, maxFp, iouT), raw: operatingPoint(sweepRun, IDENTITY_CORRECTION, maxFp, iouT) };
    const msPerImage = round(wallMs / Math.max(1, names.length), 1);
    const { perImage, ...summary } = corrected;
    const pct = (v: number) => `${(v * 100).toFixed(1)}%`;
    const fixed = correction.widthScale !== 1 || correction.heightScale !== 1;
    ctx.out(
      [
        `${detector.name} on ${detector.runtime}${detector.provider ? ` (${detector.provider})` : ''}, ${names.length} images, IoU ${iouT}, box correction ${correction.widthScale}x width, ${correction.heightScale}x height (${correctionSource})`,
        `recall ${pct(summary.recall)} (${summary.truePositives}/${summary.groundTruth}), ${summary.falsePositivesPerImage.toFixed(3)} false positives per image, precision ${pct(summary.precision)}${fixed ? `; raw boxes: recall ${pct(raw.recall)}, ${raw.falsePositivesPerImage.toFixed(3)} FP/image` : ''}`,
        `at <= ${maxFp} FP/image: recall ${pct(atMax.corrected.recall)} at score >= ${atMax.corrected.threshold.toFixed(3)} (${atMax.corrected.falsePositivesPerImage.toFixed(3)} FP/image)${fixed ? `; raw boxes: ${pct(atMax.raw.recall)} at score >= ${atMax.raw.threshold.toFixed(3)}` : ''}`,
        `${msPerImage} ms per image (wall, ${runner.workers} worker(s))`,
      ].join('\n'),
      {
        ...summary,
        iou: iouT,
        detector: detector.name,
        runtime: detector.runtime,
        ...(detector.provider ? { provider: detector.provider } : {}),
        msPerImage,
        workers: runner.workers,
        boxCorrection: { ...correction, source: correctionSource },
        raw: { recall: raw.recall, falsePositivesPerImage: raw.falsePositivesPerImage, precision: raw.precision, truePositives: raw.truePositives, falsePositives: raw.falsePositives },
        atMaxFalsePositives: { maxFpPerImage: maxFp, sweepMinScore: sweepMin, ...atMax },
        perImage,
      },
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
