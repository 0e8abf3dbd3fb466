/** faceflow eval lfw | det: the accuracy numbers in BENCHMARKS.md come from here. */
import { readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import {
  decodeImage,
  readPairs,
  lfwImagePath,
  evaluatePairs,
  roc,
  rocSvg,
  readBoxFile,
  matchDetections,
  summarise,
  l2Distance,
  calibrationFor,
  parseDegrade,
  degradeImage,
  degradeLabel,
} from '@faceflow/engine';
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

/**
 * Impostor distances over every pair of images of two different people (the person is the image's folder,
 * LFW's layout): the distance below which a share `far` of them fall, for far 1e-3 down to 1e-6. A pairs file
 * has ~1000 impostor pairs, which resolves 1e-3 at best; the ~n^2/2 pairs here resolve 1e-6 from n ~ 2000.
 */
export function allPairsImpostors(embeddings: Map<string, Float32Array | null>): {
  images: number;
  impostorPairs: number;
  distanceAtFar: Record<string, number | null>;
} {
  const items = [...embeddings].filter((e): e is [string, Float32Array] => e[1] !== null).map(([file, e]) => ({ person: path.basename(path.dirname(file)), e }));
  const fars = [1e-3, 1e-4, 1e-5, 1e-6];
  // only the smallest distances matter: keep those under a cut-off, widened if too few land under it
  let cutoff = 0.6;
  for (;;) {
    const small: number[] = [];
    let pairs = 0;
    for (let i = 0; i < items.length; i++) {
      for (let j = i + 1; j < items.length; j++) {
        if (items[i]!.person === items[j]!.person) continue;
        pairs++;
        const d = l2Distance(items[i]!.e, items[j]!.e);
        if (d < cutoff) small.push(d);
      }
    }
    small.sort((a, b) => a - b);
    const need = Math.ceil(fars[0]! * pairs) + 1;
    if (small.length < need && cutoff < 4) {
      cutoff *= 1.5;
      continue;
    }
    const distanceAtFar: Record<string, number | null> = {};
    for (const far of fars) {
      // the largest threshold t with (impostors below t) / pairs <= far: just under the (k+1)-th smallest
      const k = Math.floor(far * pairs);
      // rounded down, never up: rounding up could take in the (k+1)-th impostor and break the FAR
      distanceAtFar[far.toExponential(0)] = pairs >= 1 / far ? Math.floor((small[k] ?? cutoff) * 1e4) / 1e4 : null;
    }
    return { images: items.length, impostorPairs: pairs, distanceAtFar };
  }
}

const det: CommandSpec = {
  name: 'eval det',
  summary: 'face detection recall and false positives per image at IoU 0.5',
  usage: 'faceflow eval det --images <dir> --boxes <file> [--min-face PX] [--json]',
  flags: { ...ENGINE_FLAGS, images: { type: 'string' }, boxes: { type: 'string' }, iou: { type: 'string' } },
  help: [
    '  --images DIR       the images named in the boxes file',
    '  --boxes FILE       lines "image x_min y_min x_max y_max"',
    '  --iou T            IoU for a match (default 0.5)',
    '  Every image in DIR counts (images with no face add only false positives).',
    ...ENGINE_HELP,
  ],
  maxPositionals: 0,
  async run(ctx) {
    const dir = str(ctx, 'images', true);
    const truth = await readBoxFile(str(ctx, 'boxes', true));
    const iouT = num(ctx, 'iou', { min: 0.05, max: 0.95 }) ?? 0.5;
    let names: string[];
    try {
      names = (await readdir(dir)).filter((f) => /\.(jpe?g|png|webp)$/i.test(f)).sort();
    } catch (e) {
      throw new FaceflowError('NOT_FOUND', `cannot read folder ${dir}`, { cause: e });
    }
    const missing = [...truth.keys()].filter((k) => !names.includes(k));
    if (missing.length) throw new FaceflowError('NOT_FOUND', `${missing.length} image(s) named in the boxes file are not in ${dir}, e.g. ${missing[0]}`);
    const runner = await makeRunner(ctx, true);
    const counts = { images: 0, groundTruth: 0, truePositives: 0, falsePositives: 0 };
    const perImage: Array<{ image: string; faces: number; detections: number; tp: number; fp: number }> = [];
    const bar = ctx.progress('detecting', names.length);
    try {
      await mapLimit(names, 8, async (name) => {
          const image = await decodeImage(path.join(dir, name));
          const [faces] = await runner.run([image], { embed: false });
          const gt = truth.get(name) ?? [];
          const { tp, fp } = matchDetections(faces!, gt, iouT);
          counts.images++;
          counts.groundTruth += gt.length;
          counts.truePositives += tp;
          counts.falsePositives += fp;
          perImage.push({ image: name, faces: gt.length, detections: faces!.length, tp, fp });
          bar.tick();
        });
    } finally {
      bar.done();
      await runner.close();
    }
    const s = summarise(counts);
    ctx.out(
      `recall ${(s.recall * 100).toFixed(1)}% (${s.truePositives}/${s.groundTruth}), ${s.falsePositivesPerImage.toFixed(3)} false positives per image, precision ${(s.precision * 100).toFixed(1)}% over ${s.images} images at IoU ${iouT}`,
      { ...s, iou: iouT, perImage: perImage.sort((a, b) => a.image.localeCompare(b.image)) },
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
