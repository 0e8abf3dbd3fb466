/**
 * faceflow train seg: fits the learned skin classifier of segmentation growth on LFW Part Labels images and
 * writes its JSON (the fit, its honest split and its cross-validation: engine train/skin-fit.ts).
 */
import { writeFile } from 'node:fs/promises';
import { FaceEngine, resolveModel } from '@faceflow/engine';
import { type Split } from '@faceflow/engine/eval';
import { FaceMesh } from '@faceflow/engine/models';
import { fitSkinClassifier } from '@faceflow/engine/train';
import { FaceflowError } from '@faceflow/shared';
import { type CommandSpec, num, str, UsageError } from '../cli.js';
import { ENGINE_FLAGS, ENGINE_HELP, engineConfig } from '../engine-setup.js';

export function parseSplit(v: string | undefined, fallback: Split): Split {
  const s = v ?? fallback;
  if (s !== 'even' && s !== 'odd' && s !== 'all') throw new UsageError(`--split must be even, odd or all, got "${s}"`);
  return s;
}

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

    const r = await fitSkinClassifier(
      async () => {
        const engine = await FaceEngine.load(engineConfig(ctx));
        try {
          const mesh = await FaceMesh.load({ modelPath: (await resolveModel('facemesh')).main });
          const close = (): void => {
            try {
              mesh.dispose();
            } finally {
              engine.dispose();
            }
          };
          return { engine, mesh, close };
        } catch (e) {
          engine.dispose();
          throw e;
        }
      },
      {
        imagesDir,
        masksDir,
        split,
        folds,
        trees: sizes,
        learningRate: lr,
        minPrecision,
        samples: perImage,
        seed,
        command: `faceflow train seg --images ${imagesDir} --masks ${masksDir} --out ${out} --split ${split} --folds ${folds} --trees ${sizes.join(',')} --learning-rate ${lr} --min-precision ${minPrecision} --samples ${perImage} --seed ${seed}`,
        progress: (label, total) => ctx.progress(label, total),
      },
    );
    try {
      await writeFile(out, `${JSON.stringify(r.file)}\n`);
    } catch (e) {
      throw new FaceflowError('INVALID_ARGUMENT', `cannot write ${out}: ${(e as Error).message}`, { cause: e });
    }
    const { chosen, crossValidation: table } = r;
    ctx.out(
      [
        `fitted on ${r.images} images (${split}), ${r.pixels} pixels; ${r.skipped.length} skipped`,
        `cross-validated (${folds} folds over images): ${chosen.trees} trees, threshold ${chosen.threshold}: mean IoU ${chosen.iou.toFixed(3)} precision ${chosen.precision.toFixed(3)}`,
        ...table.map((row) => `  ${String(row.trees).padStart(3)} trees: ${row.byThreshold.map((c) => `${c.threshold.toFixed(2)}:${c.iou.toFixed(3)}/${c.precision.toFixed(3)}`).join(' ')}`),
        `wrote ${out}`,
      ].join('\n'),
      { images: r.images, split, skipped: r.skipped, pixels: r.pixels, chosen, crossValidation: table, out },
    );
  },
};
