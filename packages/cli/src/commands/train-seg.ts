/**
 * faceflow train seg: fits the learned skin classifier of segmentation growth (engine skin-classifier.ts) on
 * LFW Part Labels images, and writes its JSON (the bundled one is packages/engine/models/skin-classifier.json).
 *
 * Honest by construction: it fits on one half of the folder (--split even, the default: images 0, 2, 4, ...
 * sorted by name) and chooses the ensemble size and the probability threshold by cross-validation over
 * images inside that half; the other half is left for `faceflow eval seg --split odd`. The threshold is
 * the one with the best mean IoU among those whose cross-validated mean precision is at least
 * --min-precision (default 0.955: the issue asks 0.95 on unseen images, and the margin is for them).
 * The bundled trees are fitted with `--split all --min-precision 0.96` (the issue's test is LFW Part Labels
 * images outside ../shared, so all 300 there are training data; the estimate for unseen images is the
 * recorded 5-fold cross-validation, checked by both half-splits: BENCHMARKS.md).
 */
import { readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import {
  FaceEngine,
  FaceMesh,
  SKIN_FEATURES,
  SKIN_FEATURE_COUNT,
  SKIN_TREE_DEPTH,
  decodeImage,
  fieldMask,
  fitSkinTrees,
  growthSpace,
  LEARNED_GROW_MAX_FACE_PX,
  landmarkPolygon,
  learnedSkinField,
  meshOutline,
  meshRoiFromLandmarks,
  parseSkinClassifier,
  rasterizePolygon,
  readPartLabels,
  resolveModel,
  treeValue,
  Rng,
  type SkinClassifierFile,
  type SkinField,
  type SkinTree,
} from '@faceflow/engine';
import { FaceflowError } from '@faceflow/shared';
import { type CommandSpec, num, str, UsageError } from '../cli.js';
import { ENGINE_FLAGS, ENGINE_HELP, centreFace, engineConfig, round } from '../engine-setup.js';

export type Split = 'even' | 'odd' | 'all';

/** Image names of a split: sorted by name, then every other one by index (0-based) or all. */
export function splitNames(names: string[], split: Split): string[] {
  const sorted = [...names].sort();
  return split === 'all' ? sorted : sorted.filter((_, i) => (i % 2 === 0) === (split === 'even'));
}

export function parseSplit(v: string | undefined, fallback: Split): Split {
  const s = v ?? fallback;
  if (s !== 'even' && s !== 'odd' && s !== 'all') throw new UsageError(`--split must be even, odd or all, got "${s}"`);
  return s;
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

export const trainSeg: CommandSpec = {
  name: 'train seg',
  summary: 'fit the learned skin classifier of segmentation growth on LFW Part Labels (cross-validated)',
  usage: 'faceflow train seg --images <dir> --masks <dir> --out <file.json> [--split even] [--json]',
  flags: {
    ...ENGINE_FLAGS,
    images: { type: 'string' },
    masks: { type: 'string' },
    out: { type: 'string' },
    split: { type: 'string' },
    folds: { type: 'string' },
    trees: { type: 'string' },
    'learning-rate': { type: 'string' },
    'min-precision': { type: 'string' },
    samples: { type: 'string' },
    seed: { type: 'string' },
  },
  help: [
    '  --images DIR       photos (<name>.jpg); --masks DIR: label PNGs of the same names (green = skin, neck included)',
    '  --out FILE         the classifier JSON (trees, threshold, origin); the bundled one is',
    '                     packages/engine/models/skin-classifier.json',
    '  --split S          which images to fit on, sorted by name: even (default: indices 0, 2, ...), odd or all.',
    '                     Keep the other half for `faceflow eval seg --split odd`',
    '  --folds N          cross-validation folds over images, to choose the ensemble size and threshold (default 5)',
    '  --trees LIST       ensemble sizes to compare (default 20,40,60); --learning-rate R (default 0.15)',
    '  --min-precision P  the threshold is the best mean IoU with cross-validated mean precision >= P (default 0.955)',
    '  --samples N        training pixels drawn per image (default 2000); --seed S (default 1)',
    ...ENGINE_HELP,
  ],
  maxPositionals: 0,
  async run(ctx) {
    const imagesDir = str(ctx, 'images', true);
    const masksDir = str(ctx, 'masks', true);
    const out = str(ctx, 'out', true);
    const split = parseSplit(str(ctx, 'split'), 'even');
    const folds = num(ctx, 'folds', { min: 2, max: 20, integer: true }) ?? 5;
    const sizes = (str(ctx, 'trees') ?? '20,40,60').split(',').map((s) => Number(s.trim()));
    if (sizes.some((s) => !Number.isInteger(s) || s < 1 || s > 500)) throw new UsageError(`--trees must be integers 1..500, got "${str(ctx, 'trees')}"`);
    sizes.sort((a, b) => a - b);
    const lr = num(ctx, 'learning-rate', { min: 0.001, max: 1 }) ?? 0.15;
    const minPrecision = num(ctx, 'min-precision', { min: 0, max: 1 }) ?? 0.955;
    const perImage = num(ctx, 'samples', { min: 10, integer: true }) ?? 2000;
    const seed = num(ctx, 'seed', { integer: true }) ?? 1;
    if (!out.endsWith('.json')) throw new UsageError(`--out must be a .json file, got ${out}`);

    let all: string[];
    try {
      all = (await readdir(imagesDir)).filter((f) => /\.(jpe?g|png|webp)$/i.test(f));
    } catch (e) {
      throw new FaceflowError('NOT_FOUND', `cannot read folder ${imagesDir}: ${(e as Error).message}`, { cause: e });
    }
    const names = splitNames(all, split);
    if (names.length < folds) throw new FaceflowError('INVALID_ARGUMENT', `${names.length} image(s) in ${imagesDir} (split ${split}): need at least --folds ${folds}`);

    // ------------------------------------------------------------------ features of every image
    const engine = await FaceEngine.load(engineConfig(ctx));
    let mesh: FaceMesh | undefined;
    const data: ImageData[] = [];
    const skipped: string[] = [];
    const bar = ctx.progress('features', names.length);
    try {
      mesh = await FaceMesh.load({ modelPath: (await resolveModel('facemesh')).main });
      for (const name of names) {
        const image = await decodeImage(path.join(imagesDir, name));
        const labels = await readPartLabels(path.join(masksDir, name.replace(/\.[^.]+$/, '.png')));
        if (labels.width !== image.width || labels.height !== image.height) throw new FaceflowError('INVALID_ARGUMENT', `${name}: labels ${labels.width}x${labels.height}, image ${image.width}x${image.height}`);
        // the same face and outline as eval seg: the detection nearest the centre (else the centred box),
        // the mesh hull when the mesh sees a face (FaceSegmenter's minMeshScore 0.5), else the landmark polygon
        const [faces] = await engine.run([image], { embed: false, fallbackCenterFraction: 0.45 });
        const face = centreFace(faces!, image.width, image.height)!;
        const [m] = await mesh.run([{ image, roi: meshRoiFromLandmarks(face.landmarks) }]);
        const outline = m!.faceScore >= 0.5 ? meshOutline(m!.points) : landmarkPolygon(face.landmarks);
        const space = growthSpace(image, outline, face.landmarks, LEARNED_GROW_MAX_FACE_PX);
        const sw = space.image.width, sh = space.image.height;
        const field = learnedSkinField(space.image, rasterizePolygon(space.outline, sw, sh), space.outline, space.landmarks68);
        bar.tick();
        if (!field) { skipped.push(name); continue; }
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
        data.push({ name, field, idx: Int32Array.from(idx), X, label, truthBox, truthTotal });
      }
    } finally {
      bar.done();
      mesh?.dispose();
      engine.dispose();
    }
    if (data.length < folds) throw new FaceflowError('INVALID_ARGUMENT', `only ${data.length} usable image(s)`);

    const sample = (set: ImageData[], rng: Rng): { X: Float32Array; y: Uint8Array } => {
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
    };

    // ------------------------------------------------------------------ cross-validation over images
    const thresholds = Array.from({ length: 29 }, (_, i) => round(0.2 + 0.025 * i, 3)); // 0.200 .. 0.900
    // sums over held-out images of IoU and precision, per (ensemble size, threshold)
    const sumIou = sizes.map(() => new Float64Array(thresholds.length));
    const sumPrec = sizes.map(() => new Float64Array(thresholds.length));
    const maxTrees = sizes[sizes.length - 1]!;
    const cvBar = ctx.progress('cross-validation', folds);
    for (let f = 0; f < folds; f++) {
      const test = data.filter((_, i) => i % folds === f);
      const train = data.filter((_, i) => i % folds !== f);
      const { X, y } = sample(train, new Rng(seed + f));
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
            thresholds.forEach((th, ti) => {
              const lt = logit(th);
              const sc = scoreMask(d, (k) => byK[k]! > lt);
              sumIou[s]![ti]! += sc.iou;
              sumPrec[s]![ti]! += sc.precision;
            });
          });
        },
      });
      cvBar.tick();
    }
    cvBar.done();
    const table = sizes.map((size, s) => ({
      trees: size,
      byThreshold: thresholds.map((t, ti) => ({ threshold: t, iou: round(sumIou[s]![ti]! / data.length), precision: round(sumPrec[s]![ti]! / data.length) })),
    }));
    let choice: { trees: number; threshold: number; iou: number; precision: number } | undefined;
    for (const row of table) {
      for (const c of row.byThreshold) {
        if (c.precision >= minPrecision && (!choice || c.iou > choice.iou)) choice = { trees: row.trees, threshold: c.threshold, iou: c.iou, precision: c.precision };
      }
    }
    if (!choice) throw new FaceflowError('INVALID_ARGUMENT', `no ensemble size and threshold reaches cross-validated precision ${minPrecision}; lower --min-precision`);

    // ------------------------------------------------------------------ the final fit, on the whole split
    const { X, y } = sample(data, new Rng(seed));
    const fit = fitSkinTrees(X, y, SKIN_FEATURE_COUNT, { trees: choice.trees, learningRate: lr });
    const r4 = (v: number): number => (Math.abs(v) >= 1e29 ? v : Number(v.toPrecision(5)));
    const file: SkinClassifierFile = {
      format: 'faceflow-skin-gbt',
      version: 1,
      features: [...SKIN_FEATURES],
      depth: SKIN_TREE_DEPTH,
      base: r4(fit.base),
      threshold: choice.threshold,
      trees: fit.trees.map((t) => ({ f: t.f, t: t.t.map(r4), v: t.v.map(r4) })),
      origin: {
        trainedOn: `${split === 'all' ? 'all' : `${split}-indexed`} ${data.length} of ${all.length} images (sorted by name, 0-based) in ${path.basename(path.dirname(path.resolve(imagesDir)))}/${path.basename(imagesDir)}${skipped.length ? `; ${skipped.length} skipped (no skin sample): ${skipped.join(', ')}` : ''}`,
        command: `faceflow train seg --images ${imagesDir} --masks ${masksDir} --out ${out} --split ${split} --folds ${folds} --trees ${sizes.join(',')} --learning-rate ${lr} --min-precision ${minPrecision} --samples ${perImage} --seed ${seed}`,
        date: new Date().toISOString().slice(0, 10),
        trainingPixels: y.length,
        crossValidation: { folds, chosen: choice, minPrecision },
      },
    };
    parseSkinClassifier(file, 'the fitted classifier'); // the file this writes must load
    try {
      await writeFile(out, `${JSON.stringify(file)}\n`);
    } catch (e) {
      throw new FaceflowError('INVALID_ARGUMENT', `cannot write ${out}: ${(e as Error).message}`, { cause: e });
    }
    ctx.out(
      [
        `fitted on ${data.length} images (${split}), ${y.length} pixels; ${skipped.length} skipped`,
        `cross-validated (${folds} folds over images): ${choice.trees} trees, threshold ${choice.threshold}: mean IoU ${choice.iou.toFixed(3)} precision ${choice.precision.toFixed(3)}`,
        ...table.map((row) => `  ${String(row.trees).padStart(3)} trees: ${row.byThreshold.map((c) => `${c.threshold.toFixed(2)}:${c.iou.toFixed(3)}/${c.precision.toFixed(3)}`).join(' ')}`),
        `wrote ${out}`,
      ].join('\n'),
      { images: data.length, split, skipped, pixels: y.length, chosen: choice, crossValidation: table, out },
    );
  },
};
