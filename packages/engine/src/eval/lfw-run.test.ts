/** The `eval lfw` run (issue 13): pairs in, figures out, over a fake runner that embeds an image by its colour. */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DetectedFace } from '../recognize/engine.js';
import type { RgbImage } from '../image/geometry.js';
import { runLfwEval } from './lfw-run.js';
import type { EvalRunner } from './runner.js';

let root: string;
/** person -> colour of their images: the fake embedding is the colour, normalised */
const PEOPLE: Record<string, [number, number, number]> = { Ann_A: [250, 10, 10], Bob_B: [10, 250, 10], Cy_C: [10, 10, 250] };

beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'faceflow-lfw-run-'));
  for (const [name, [r, g, b]] of Object.entries(PEOPLE)) {
    await mkdir(path.join(root, 'images', name), { recursive: true });
    for (const i of [1, 2]) {
      const png = await sharp({ create: { width: 40, height: 40, channels: 3, background: { r: r + i, g, b } } }).jpeg({ quality: 95 }).toBuffer();
      await writeFile(path.join(root, 'images', name, `${name}_000${i}.jpg`), png);
    }
  }
  // View 1 layout: the count, then that many same pairs, then that many different pairs
  await writeFile(path.join(root, 'pairs.txt'), '2\nAnn_A\t1\t2\nBob_B\t1\t2\nAnn_A\t1\tBob_B\t1\nBob_B\t2\tCy_C\t1\n');
});
afterAll(async () => rm(root, { recursive: true, force: true }));

/** Embeds by colour; Cy_C's images (blue) have no face found but the centred fallback box (score 0). */
function fakeRunner(name = 'fake-model', threshold?: number): { open: () => Promise<EvalRunner>; state: { opened: number; closed: number } } {
  const state = { opened: 0, closed: 0 };
  const run = async (images: RgbImage[]): Promise<DetectedFace[][]> =>
    images.map((im) => {
      const [r, g, b] = [im.data[0]!, im.data[1]!, im.data[2]!];
      const n = Math.hypot(r, g, b);
      const box = { x: 10, y: 10, width: 20, height: 20 };
      return [{ box, score: b > 200 ? 0 : 0.9, keypoints: [], landmarks: [], embedding: Float32Array.from([r / n, g / n, b / n]) }];
    });
  const open = async (): Promise<EvalRunner> => {
    state.opened++;
    return {
      run,
      close: async () => void state.closed++,
      embedder: { name, dim: 3, chipSize: 150, ...(threshold !== undefined ? { threshold } : {}) },
      models: {} as EvalRunner['models'],
      workers: 1,
    };
  };
  return { open, state };
}

describe('runLfwEval', () => {
  it('scores View 1 pairs at the model\'s own threshold and reports the figures rounded', async () => {
    const { open, state } = fakeRunner('fake-model', 0.5);
    const { figures, report } = await runLfwEval(open, { imagesRoot: path.join(root, 'images'), pairsFile: path.join(root, 'pairs.txt') });
    expect(report).toMatchObject({ protocol: 'view1', pairs: 4, failedPairs: 0, thresholdSource: 'calibrated', threshold: 0.5 });
    expect(report.accuracy).toBe(1);
    expect(figures).toMatchObject({ model: 'fake-model', images: 5, fallbackImages: 1, accuracy: 1, threshold: 0.5 });
    expect(figures).not.toHaveProperty('allPairs');
    expect(state).toEqual({ opened: 1, closed: 1 });
  });

  it('an explicit threshold wins; --fit takes the best on the same pairs; --all-pairs adds the impostor distances', async () => {
    const { open } = fakeRunner('fake-model', 0.5);
    const opts = { imagesRoot: path.join(root, 'images'), pairsFile: path.join(root, 'pairs.txt') };
    expect((await runLfwEval(open, { ...opts, threshold: 0.0001 })).report).toMatchObject({ threshold: 0.0001, thresholdSource: 'given', accuracy: 0.5 });
    const fit = await runLfwEval(open, { ...opts, fit: true, allPairs: true, limit: 1 });
    expect(fit.report).toMatchObject({ thresholdSource: 'best-on-same-pairs', pairs: 2, accuracy: 1 });
    expect(fit.figures.allPairs).toMatchObject({ images: 3 });
  });

  it('a model with no calibrated threshold is one INVALID_CONFIG naming the fix', async () => {
    const { open } = fakeRunner('uncalibrated-model');
    await expect(runLfwEval(open, { imagesRoot: path.join(root, 'images'), pairsFile: path.join(root, 'pairs.txt') })).rejects.toThrow(
      /model "uncalibrated-model" has no calibrated threshold: pass --threshold or --fit/,
    );
  });

  it('missing images are one NOT_FOUND; a bad pairs file fails before any model loads', async () => {
    const { open, state } = fakeRunner('fake-model', 0.5);
    await expect(runLfwEval(open, { imagesRoot: path.join(root, 'nowhere'), pairsFile: path.join(root, 'pairs.txt') })).rejects.toThrow(
      /5 image\(s\) of the pairs are missing under .*nowhere/,
    );
    expect(state.closed).toBe(1);
    await expect(runLfwEval(open, { imagesRoot: path.join(root, 'images'), pairsFile: path.join(root, 'no-pairs.txt') })).rejects.toMatchObject({ code: 'NOT_FOUND' });
    expect(state.opened).toBe(1);
  });
});
