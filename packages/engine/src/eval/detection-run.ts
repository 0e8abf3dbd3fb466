/**
 * The detection run (`faceflow eval det`, issue 13 step 2: the loop out of the CLI): every image of a folder
 * through the detector, matched against the ground-truth boxes at an IoU (detection.ts), raw and with the
 * detector's box correction (fitted here with `fitBoxes` and stored, else the stored one), plus the operating
 * point at a false-positive budget per image. Every image of the folder counts (one with no face adds only
 * false positives). msPerImage is the wall time per image of the headline pass over all workers.
 */
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { FaceflowError } from '@faceflow/shared';
import type { Box } from '../image/geometry.js';
import { decodeImage } from '../image/image.js';
import {
  correctBox, DEFAULT_BOX_CORRECTIONS, fitBoxCorrection, IDENTITY_CORRECTION, matchDetections, operatingPoint, readBoxCorrections, readBoxFile, summarise, writeBoxCorrection,
  type BoxCorrection, type DetectionRun, type ScoredBox,
} from './detection.js';
import { roundTo as round } from './rounding.js';
import { mapLimit, type EvalProgress, type EvalRunner } from './runner.js';

export interface DetectionRunOptions {
  /** the images named in the boxes files (and any others, unless onlyListed) */
  imagesDir: string;
  /** "image x_min y_min x_max y_max" lines or dlib imglab XML; their boxes are merged */
  boxesFiles: string[];
  onlyListed?: boolean;
  /** IoU for a match (default 0.5) */
  iou?: number;
  /** the false-positive budget per image of the operating point and the fit (default 0.3) */
  maxFp?: number;
  /** fit the detector's box correction on these images and store it */
  fitBoxes?: boolean;
  /** where corrections are stored (default the engine's models/box-corrections.json) */
  correctionsFile?: string;
  /** the detector's smallest face, recorded with a fitted correction */
  minFace?: number;
  /** the detector's configured score threshold (the sweep goes at least this low) */
  minScore?: number;
  progress?: EvalProgress;
}

/** The lowest score the sweep for the operating point looks at (the operating point is read off this curve). */
export const SWEEP_MIN_SCORE = 0.3;
/** Images in flight per pass. */
const IN_FLIGHT = 8;

/**
 * Runs the evaluation (see the module comment). `open` is called once the boxes and the folder passed their
 * checks (an image the boxes name but the folder lacks fails before any model loads); the runner is closed
 * when the detection passes are done.
 */
export async function runDetectionEval(open: () => Promise<EvalRunner>, options: DetectionRunOptions) {
  const dir = options.imagesDir;
  const truth = new Map<string, Box[]>();
  for (const f of options.boxesFiles) {
    for (const [k, v] of await readBoxFile(f)) truth.set(k, [...(truth.get(k) ?? []), ...v]);
  }
  const iouT = options.iou ?? 0.5;
  const maxFp = options.maxFp ?? 0.3;
  const correctionsFile = options.correctionsFile;
  let names: string[];
  try {
    names = (await readdir(dir)).filter((f) => /\.(jpe?g|png|webp)$/i.test(f)).sort();
  } catch (e) {
    throw new FaceflowError('NOT_FOUND', `cannot read folder ${dir}`, { cause: e });
  }
  const missing = [...truth.keys()].filter((k) => !names.includes(k));
  if (missing.length) throw new FaceflowError('NOT_FOUND', `${missing.length} image(s) named in the boxes file are not in ${dir}, e.g. ${missing[0]}`);
  if (options.onlyListed) names = names.filter((n) => truth.has(n));
  const corrections = await readBoxCorrections(correctionsFile);
  const runner = await open();
  const detector = runner.models.detector;
  const sweepMin = Math.min(SWEEP_MIN_SCORE, options.minScore ?? 1);
  // pass 1: the detector as configured (the headline figures, timed); pass 2: down to sweepMin, for the
  // operating point and the fit (a separate pass: BlazeFace's weighted NMS merges differently when more
  // candidates pass the threshold)
  const headline = new Map<string, ScoredBox[]>();
  const sweep = new Map<string, ScoredBox[]>();
  let wallMs = 0;
  const bar = options.progress?.('detecting', 2 * names.length);
  try {
    for (const [pass, into] of [[undefined, headline], [sweepMin, sweep]] as const) {
      const t0 = performance.now();
      await mapLimit(names, IN_FLIGHT, async (name) => {
        const image = await decodeImage(path.join(dir, name));
        const [faces] = await runner.run([image], { detectOnly: true, ...(pass !== undefined ? { minScore: pass } : {}) });
        into.set(name, faces!.map((f) => ({ box: f.box, score: f.score })));
        bar?.tick();
      });
      if (pass === undefined) wallMs = performance.now() - t0;
    }
  } finally {
    bar?.done();
    await runner.close();
  }
  const sweepRun: DetectionRun = { images: names.map((n) => ({ image: n, detections: sweep.get(n)!, truth: truth.get(n) ?? [] })) };
  let correction: BoxCorrection;
  let correctionSource: string;
  if (options.fitBoxes) {
    const fit = fitBoxCorrection(sweepRun, maxFp, iouT);
    correction = { widthScale: fit.widthScale, heightScale: fit.heightScale };
    await writeBoxCorrection(
      detector.name,
      {
        ...correction,
        images: dir,
        boxes: options.boxesFiles.join(','),
        ...(options.minFace !== undefined ? { minFace: options.minFace } : {}),
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
  const figuresFor = (c: BoxCorrection) => {
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
  const { perImage, ...summary } = figuresFor(correction);
  const raw = figuresFor(IDENTITY_CORRECTION);
  const atMax = { corrected: operatingPoint(sweepRun, correction, maxFp, iouT), raw: operatingPoint(sweepRun, IDENTITY_CORRECTION, maxFp, iouT) };
  return {
    ...summary,
    iou: iouT,
    detector: detector.name,
    runtime: detector.runtime,
    ...(detector.provider ? { provider: detector.provider } : {}),
    msPerImage: round(wallMs / Math.max(1, names.length), 1),
    workers: runner.workers,
    boxCorrection: { ...correction, source: correctionSource },
    raw: { recall: raw.recall, falsePositivesPerImage: raw.falsePositivesPerImage, precision: raw.precision, truePositives: raw.truePositives, falsePositives: raw.falsePositives },
    atMaxFalsePositives: { maxFpPerImage: maxFp, sweepMinScore: sweepMin, ...atMax },
    perImage,
  };
}

/** What runDetectionEval returns (what `faceflow eval det --json` prints). */
export type DetectionRunResult = Awaited<ReturnType<typeof runDetectionEval>>;
