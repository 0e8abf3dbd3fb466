/**
 * The LFW verification run (`faceflow eval lfw`, issue 13 step 2: the loop out of the CLI): read the pairs
 * file, embed every image of the pairs (degraded first if asked), score each pair by L2 distance, and report
 * the protocol's accuracy (lfw.ts evaluatePairs), the ROC plot and, if asked, the all-pairs impostor
 * distances. A face that is not detected falls back to the centred 45% box (LFW is centred by construction).
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { FaceflowError } from '@faceflow/shared';
import { decodeImage } from '../image/image.js';
import { degradeImage, degradeLabel, type DegradeOp } from '../image/degrade.js';
import { l2Distance } from '../match/decide.js';
import { thresholdsFor } from '../match/decision.js';
import { allPairsImpostors, centreFace, evaluatePairs, lfwImagePath, readPairs, roc, rocSvg, type LfwReport } from './lfw.js';
import { roundTo as round } from './rounding.js';
import { mapLimit, type EvalProgress, type EvalRunner } from './runner.js';

export interface LfwRunOptions {
  /** ROOT/<Name>/<Name>_NNNN.jpg */
  imagesRoot: string;
  /** pairs.txt (10 folds) or pairsDev*.txt (View 1) */
  pairsFile: string;
  /** only the first N pairs of each class and fold */
  limit?: number;
  /** View 1: score at this threshold instead of the calibrated one */
  threshold?: number;
  /** View 1: the best threshold on these same pairs */
  fit?: boolean;
  /** degradation of every image before the engine sees it (faces taken to be 40% of the image side) */
  degrade?: DegradeOp[];
  wholeImage?: boolean;
  /** also score every impostor pair of the embedded images */
  allPairs?: boolean;
  /** the ROC curve PNG */
  plot?: string;
  progress?: EvalProgress;
}

/** The share of the image side an LFW face takes, for the degradations' face size. */
const LFW_FACE_FRACTION = 0.4;
/** The centred box taken when no face is detected (LFW is centred by construction). */
const FALLBACK_CENTER_FRACTION = 0.45;
/** Images embedded at once. */
const IN_FLIGHT = 16;

/**
 * Runs the evaluation (see the module comment). `open` is called once the pairs file has been read; the
 * runner is closed when the embedding is done. Returns the figures as reported (rounded) and the unrounded
 * report.
 */
export async function runLfwEval(open: () => Promise<EvalRunner>, options: LfwRunOptions) {
  const { imagesRoot: root, pairsFile, limit } = options;
  const degrade = options.degrade ?? [];
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
  const runner = await open();
  const embeddings = new Map<string, Float32Array | null>();
  let fallbackImages = 0;
  const missing: string[] = [];
  const bar = options.progress?.('embedding', files.size);
  const started = Date.now();
  try {
    await mapLimit([...files], IN_FLIGHT, async (file) => {
      try {
        const decoded = await decodeImage(file);
        const image = degrade.length ? await degradeImage(decoded, degrade, LFW_FACE_FRACTION * Math.min(decoded.width, decoded.height)) : decoded;
        const [faces] = await runner.run([image], { fallbackCenterFraction: FALLBACK_CENTER_FRACTION, wholeImageIsFace: options.wholeImage === true });
        const face = centreFace(faces!, image.width, image.height);
        if (face && face.score === 0) fallbackImages++;
        embeddings.set(file, face?.embedding ?? null);
      } catch (e) {
        if (e instanceof FaceflowError && e.code === 'NOT_FOUND') missing.push(file);
        else throw e;
        embeddings.set(file, null);
      } finally {
        bar?.tick();
      }
    });
  } finally {
    bar?.done();
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
  // verify's threshold (the accuracy-optimal one) of the model, by the one policy's lookup (match/decision.ts)
  const calibrated = options.fit ? undefined : (options.threshold ?? thresholdsFor(runner.embedder)?.threshold);
  if (set.kind === 'view1' && calibrated === undefined && !options.fit) {
    throw new FaceflowError('INVALID_CONFIG', `model "${model}" has no calibrated threshold: pass --threshold or --fit`);
  }
  // a --threshold given by hand is reported as such, not as the model's calibration
  const report: LfwReport = evaluatePairs(set, scored, calibrated, options.threshold !== undefined && !options.fit ? 'given' : 'calibrated');
  if (options.plot) {
    const svg = rocSvg(roc(scored), `LFW ${path.basename(pairsFile)}: acc ${(report.accuracy * 100).toFixed(2)}%, AUC ${report.auc.toFixed(4)}`);
    try {
      await writeFile(options.plot, await sharp(Buffer.from(svg)).png().toBuffer());
    } catch (e) {
      throw new FaceflowError('INVALID_ARGUMENT', `cannot write plot ${options.plot}: ${(e as Error).message}`, { cause: e });
    }
  }
  const figures = {
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
    ...(options.allPairs ? { allPairs: allPairsImpostors(embeddings) } : {}),
  };
  return { figures, report };
}

/** What runLfwEval returns: `figures` as reported (rounded), `report` unrounded. */
export type LfwRunResult = Awaited<ReturnType<typeof runLfwEval>>;
