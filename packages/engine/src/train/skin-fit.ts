/**
 * The fit of the learned skin classifier of segmentation growth (skin-classifier.ts) on LFW Part Labels images
 * (`faceflow train seg`; issue 13 step 2: the fit out of the CLI). The result is the classifier's JSON (the
 * bundled one is packages/engine/models/skin-classifier.json).
 *
 * Honest by construction: it fits on one half of the folder (split 'even', the default: images 0, 2, 4, ...
 * sorted by name) and chooses the ensemble size and the probability threshold by cross-validation over
 * images inside that half; the other half is left for `faceflow eval seg --split odd`. The threshold is the
 * one with the best mean IoU among those whose cross-validated mean precision is at least `minPrecision`
 * (default 0.955: the issue asks 0.95 on unseen images, and the margin is for them). The bundled trees are
 * fitted with split 'all' and minPrecision 0.96 (the issue's test is LFW Part Labels images outside
 * ../shared, so all 300 there are training data; the estimate for unseen images is the recorded 5-fold
 * cross-validation, checked by both half-splits: BENCHMARKS.md).
 *
 * Each image's face and outline are those of `eval seg`: the detection nearest the centre (else the centred
 * box), the mesh hull when the mesh sees a face (FaceSegmenter's minMeshScore 0.5), else the landmark polygon;
 * its pixels are taken in the growth space (segment.ts growthSpace), as the classifier sees them.
 */
import path from 'node:path';
import { FaceflowError } from '@faceflow/shared';
import type { FaceEngine } from '../recognize/engine.js';
import { decodeImage } from '../image/image.js';
import { rasterizePolygon } from '../segment/mask.js';
import { meshRoiFromLandmarks, type FaceMesh } from '../models/facemesh.js';
import { growthSpace, landmarkPolygon, LEARNED_GROW_MAX_FACE_PX, learnedSkinField, meshOutline } from '../segment/index.js';
import { fieldMask, parseSkinClassifier, SKIN_FEATURE_COUNT, SKIN_FEATURES, SKIN_TREE_DEPTH, type SkinClassifierFile, type SkinField, type SkinTree } from '../segment/index.js';
import { centreFace } from '../eval/lfw.js';
import { readPartLabels } from '../eval/segmentation.js';
import { listImages, partLabelsFile, splitNames, type Split } from '../eval/segmentation-run.js';
import { Rng } from '../eval/rng.js';
import { fitSkinTrees, treeValue } from './skin-gbt.js';

export interface SkinFitOptions {
  /** photos (<name>.jpg) and their label PNGs of the same names (green = skin, neck included) */
  imagesDir: string;
  masksDir: string;
  /** which images to fit on, sorted by name (default 'even') */
  split?: Split;
  /** cross-validation folds over images (default 5) */
  folds?: number;
  /** ensemble sizes compared (default 20, 40, 60) */
  trees?: number[];
  /** default 0.15 */
  learningRate?: number;
  /** the least cross-validated mean precision of the chosen threshold (default 0.955) */
  minPrecision?: number;
  /** training pixels drawn per image (default 2000) */
  samples?: number;
  /** default 1 */
  seed?: number;
  /** how to make the file again, recorded in its origin (e.g. the faceflow command line; default: these options) */
  command?: string;
  progress?: (label: string, total: number) => { tick(): void; done(): void };
}

/** The models the fit reads faces with; `close` is called as soon as the features are taken. */
export interface SkinFitTools {
  engine: Pick<FaceEngine, 'run'>;
  mesh: Pick<FaceMesh, 'run'>;
  close(): void;
}

export interface SkinFitChoice {
  trees: number;
  threshold: number;
  /** cross-validated mean IoU and precision over held-out images */
  iou: number;
  precision: number;
}

export interface SkinFitResult {
  /** the classifier file (parsed once: it loads) */
  file: SkinClassifierFile;
  /** images fitted on, of `allImages` in the folder */
  images: number;
  allImages: number;
  /** images with no skin sample in their growth region */
  skipped: string[];
  /** training pixels of the final fit */
  pixels: number;
  chosen: SkinFitChoice;
  /** per ensemble size, the cross-validated mean IoU and precision at each threshold */
  crossValidation: Array<{ trees: number; byThreshold: Array<{ threshold: number; iou: number; precision: number }> }>;
}

/** The probability thresholds the cross-validation compares: 0.200 .. 0.900. */
const THRESHOLDS = Array.from({ length: 29 }, (_, i) => round(0.2 + 0.025 * i, 3));

/** The means of the cross-validation table are compared as 4-digit numbers (as the table prints them). */
function round(v: number, digits = 4): number {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}

/** One image's pixels, as the classifier sees them (in the growth space: see growthSpace). */
interface ImageData {
  name: string;
  field: SkinField;
  /** box indices of the candidate pixels the flood may ask about (region, not seed) */
  idx: Int32Array;
  X: Float32Array;
  label: Uint8Array;
  /** skin label per box pixel, and the skin label's pixel count in the whole space */
  truthBox: Uint8Array;
  truthTotal: number;
}

function scoreMask(d: ImageData, accept: (k: number) => boolean): { iou: number; precision: number } {
  const m = fieldMask(d.field, accept);
  let inter = 0, p = 0;
  const { box } = d.field;
  for (let j = 0; j < m.h; j++) {
    for (let i = 0; i < m.w; i++) {
      if (!m.data[j * m.w + i]) continue;
      p++;
      inter += d.truthBox[(m.y + j - box.y) * box.w + (m.x + i - box.x)]!;
    }
  }
  const union = p + d.truthTotal - inter;
  return { iou: union === 0 ? 1 : inter / union, precision: p === 0 ? 0 : inter / p };
}

const logit = (p: number): number => Math.log(p / (1 - p));

/** The features and labels of every image; null for one whose growth region has no skin sample. */
async function imageFeatures(tools: SkinFitTools, imagesDir: string, masksDir: string, name: string): Promise<ImageData | null> {
  const image = await decodeImage(path.join(imagesDir, name));
  const labels = await readPartLabels(partLabelsFile(masksDir, name));
  if (labels.width !== image.width || labels.height !== image.height) throw new FaceflowError('INVALID_ARGUMENT', `${name}: labels ${labels.width}x${labels.height}, image ${image.width}x${image.height}`);
  const [faces] = await tools.engine.run([image], { embed: false, fallbackCenterFraction: 0.45 });
  const face = centreFace(faces!, image.width, image.height)!;
  const [m] = await tools.mesh.run([{ image, roi: meshRoiFromLandmarks(face.landmarks) }]);
  const outline = m!.faceScore >= 0.5 ? meshOutline(m!.points) : landmarkPolygon(face.landmarks);
  const space = growthSpace(image, outline, face.landmarks, LEARNED_GROW_MAX_FACE_PX);
  const sw = space.image.width, sh = space.image.height;
  const field = learnedSkinField(space.image, rasterizePolygon(space.outline, sw, sh), space.outline, space.landmarks68);
  if (!field) return null;
  // labels in the space: each space pixel takes the frame label its centre falls in
  const truthAt = (i: number, j: number): number => {
    const fx = Math.min(image.width - 1, Math.floor(space.ox + (i + 0.5) / space.k));
    const fy = Math.min(image.height - 1, Math.floor(space.oy + (j + 0.5) / space.k));
    return labels.skin[fy * image.width + fx]!;
  };
  let truthTotal = 0;
  for (let j = 0; j < sh; j++) for (let i = 0; i < sw; i++) truthTotal += truthAt(i, j);
  const { box } = field;
  const truthBox = new Uint8Array(box.w * box.h);
  const idx: number[] = [];
  for (let k = 0; k < box.w * box.h; k++) {
    const i = k % box.w, j = (k - i) / box.w;
    truthBox[k] = truthAt(box.x + i, box.y + j);
    if (field.region[k] && !field.seed[k]) idx.push(k);
  }
  const X = new Float32Array(idx.length * SKIN_FEATURE_COUNT);
  const x = new Float64Array(SKIN_FEATURE_COUNT);
  const label = new Uint8Array(idx.length);
  idx.forEach((k, r) => {
    field.features(k, x);
    X.set(x, r * SKIN_FEATURE_COUNT);
    label[r] = truthBox[k]!;
  });
  return { name, field, idx: Int32Array.from(idx), X, label, truthBox, truthTotal };
}

/** Up to `perImage` candidate pixels of every image (all of an image that has fewer), drawn with `rng`. */
function sample(set: ImageData[], perImage: number, rng: Rng): { X: Float32Array; y: Uint8Array } {
  const rows: Array<[ImageData, number]> = [];
  for (const d of set) {
    const n = d.idx.length;
    if (n <= perImage) for (let r = 0; r < n; r++) rows.push([d, r]);
    else for (let t = 0; t < perImage; t++) rows.push([d, rng.int(n)]);
  }
  const X = new Float32Array(rows.length * SKIN_FEATURE_COUNT);
  const y = new Uint8Array(rows.length);
  rows.forEach(([d, r], i) => {
    X.set(d.X.subarray(r * SKIN_FEATURE_COUNT, (r + 1) * SKIN_FEATURE_COUNT), i * SKIN_FEATURE_COUNT);
    y[i] = d.label[r]!;
  });
  return { X, y };
}

/**
 * Fits the classifier (see the module comment). `openTools` is called once the folder passed its checks and
 * its models are closed once every image's features are taken.
 */
export async function fitSkinClassifier(openTools: () => Promise<SkinFitTools>, options: SkinFitOptions): Promise<SkinFitResult> {
  const { imagesDir, masksDir } = options;
  const split = options.split ?? 'even';
  const folds = options.folds ?? 5;
  const sizes = [...(options.trees ?? [20, 40, 60])].sort((a, b) => a - b);
  const lr = options.learningRate ?? 0.15;
  const minPrecision = options.minPrecision ?? 0.955;
  const perImage = options.samples ?? 2000;
  const seed = options.seed ?? 1;
  if (!(folds >= 2) || sizes.length === 0 || sizes.some((s) => !Number.isInteger(s) || s < 1)) {
    throw new FaceflowError('INVALID_ARGUMENT', `skin classifier fit: folds must be >= 2 and tree counts positive integers, got folds ${folds}, trees ${sizes.join(',')}`);
  }
  const all = await listImages(imagesDir);
  const names = splitNames(all, split);
  if (names.length < folds) throw new FaceflowError('INVALID_ARGUMENT', `${names.length} image(s) in ${imagesDir} (split ${split}): need at least --folds ${folds}`);

  // ------------------------------------------------------------------ features of every image
  const data: ImageData[] = [];
  const skipped: string[] = [];
  const bar = options.progress?.('features', names.length);
  const tools = await openTools();
  try {
    for (const name of names) {
      const d = await imageFeatures(tools, imagesDir, masksDir, name);
      bar?.tick();
      if (d) data.push(d);
      else skipped.push(name);
    }
  } finally {
    bar?.done();
    tools.close();
  }
  if (data.length < folds) throw new FaceflowError('INVALID_ARGUMENT', `only ${data.length} usable image(s)`);

  // ------------------------------------------------------------------ cross-validation over images
  // sums over held-out images of IoU and precision, per (ensemble size, threshold)
  const sumIou = sizes.map(() => new Float64Array(THRESHOLDS.length));
  const sumPrec = sizes.map(() => new Float64Array(THRESHOLDS.length));
  const maxTrees = sizes[sizes.length - 1]!;
  const cvBar = options.progress?.('cross-validation', folds);
  for (let f = 0; f < folds; f++) {
    const test = data.filter((_, i) => i % folds === f);
    const train = data.filter((_, i) => i % folds !== f);
    const { X, y } = sample(train, perImage, new Rng(seed + f));
    // held-out margins, accumulated tree by tree and scored at each ensemble size
    const margins = test.map((d) => new Float64Array(d.idx.length));
    const x = new Float64Array(SKIN_FEATURE_COUNT);
    fitSkinTrees(X, y, SKIN_FEATURE_COUNT, {
      trees: maxTrees,
      learningRate: lr,
      onTree: (tree: SkinTree, t: number, base: number) => {
        test.forEach((d, di) => {
          const mg = margins[di]!;
          for (let r = 0; r < d.idx.length; r++) {
            for (let c = 0; c < SKIN_FEATURE_COUNT; c++) x[c] = d.X[r * SKIN_FEATURE_COUNT + c]!;
            mg[r]! += treeValue(tree, x);
          }
        });
        const s = sizes.indexOf(t + 1);
        if (s < 0) return;
        test.forEach((d, di) => {
          const mg = margins[di]!;
          const byK = new Float64Array(d.field.box.w * d.field.box.h);
          for (let r = 0; r < d.idx.length; r++) byK[d.idx[r]!] = base + mg[r]!;
          THRESHOLDS.forEach((th, ti) => {
            const lt = logit(th);
            const sc = scoreMask(d, (k) => byK[k]! > lt);
            sumIou[s]![ti]! += sc.iou;
            sumPrec[s]![ti]! += sc.precision;
          });
        });
      },
    });
    cvBar?.tick();
  }
  cvBar?.done();
  const table = sizes.map((size, s) => ({
    trees: size,
    byThreshold: THRESHOLDS.map((t, ti) => ({ threshold: t, iou: round(sumIou[s]![ti]! / data.length), precision: round(sumPrec[s]![ti]! / data.length) })),
  }));
  const chosen = chooseSkinFit(table, minPrecision);

  // ------------------------------------------------------------------ the final fit, on the whole split
  const { X, y } = sample(data, perImage, new Rng(seed));
  const fit = fitSkinTrees(X, y, SKIN_FEATURE_COUNT, { trees: chosen.trees, learningRate: lr });
  const r4 = (v: number): number => (Math.abs(v) >= 1e29 ? v : Number(v.toPrecision(5)));
  const file: SkinClassifierFile = {
    format: 'faceflow-skin-gbt',
    version: 1,
    features: [...SKIN_FEATURES],
    depth: SKIN_TREE_DEPTH,
    base: r4(fit.base),
    threshold: chosen.threshold,
    trees: fit.trees.map((t) => ({ f: t.f, t: t.t.map(r4), v: t.v.map(r4) })),
    origin: {
      trainedOn: `${split === 'all' ? 'all' : `${split}-indexed`} ${data.length} of ${all.length} images (sorted by name, 0-based) in ${path.basename(path.dirname(path.resolve(imagesDir)))}/${path.basename(imagesDir)}${skipped.length ? `; ${skipped.length} skipped (no skin sample): ${skipped.join(', ')}` : ''}`,
      command: options.command ?? `fitSkinClassifier ${JSON.stringify({ split, folds, trees: sizes, learningRate: lr, minPrecision, samples: perImage, seed })}`,
      date: new Date().toISOString().slice(0, 10),
      trainingPixels: y.length,
      crossValidation: { folds, chosen, minPrecision },
    },
  };
  parseSkinClassifier(file, 'the fitted classifier'); // the file must load
  return { file, images: data.length, allImages: all.length, skipped, pixels: y.length, chosen, crossValidation: table };
}

/**
 * The choice of ensemble size and threshold: the best cross-validated mean IoU among those with mean precision
 * at least `minPrecision` (the first of equals, smallest ensemble and threshold first); INVALID_ARGUMENT when none.
 */
export function chooseSkinFit(table: SkinFitResult['crossValidation'], minPrecision: number): SkinFitChoice {
  let choice: SkinFitChoice | undefined;
  for (const row of table) {
    for (const c of row.byThreshold) {
      if (c.precision >= minPrecision && (!choice || c.iou > choice.iou)) choice = { trees: row.trees, threshold: c.threshold, iou: c.iou, precision: c.precision };
    }
  }
  if (!choice) throw new FaceflowError('INVALID_ARGUMENT', `no ensemble size and threshold reaches cross-validated precision ${minPrecision}; lower --min-precision`);
  return choice;
}
