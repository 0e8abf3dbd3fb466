/** The `eval det` run (issue 13): folder and boxes in, raw and corrected figures out, over a fake detector. */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DetectedFace, RunOptions } from '../recognize/engine.js';
import type { RgbImage } from '../image/geometry.js';
import { runDetectionEval } from './detection-run.js';
import type { EvalRunner } from './runner.js';

let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'faceflow-det-run-'));
  await mkdir(path.join(dir, 'images'));
  const png = await sharp({ create: { width: 200, height: 200, channels: 3, background: { r: 90, g: 90, b: 90 } } }).png().toBuffer();
  for (const n of ['a.png', 'b.png', 'c.png', 'empty.png']) await writeFile(path.join(dir, 'images', n), png);
  // the truth is 1.5x wider and 1.2x taller than what the fake detector finds, about the same centre
  await writeFile(path.join(dir, 'boxes.txt'), ['a.png 40 44 100 116', 'b.png 40 44 100 116', 'c.png 40 44 100 116'].join('\n'));
});
afterAll(async () => rm(dir, { recursive: true, force: true }));

/** One face at (50, 50, 40 x 60) in every image; a low-scored false positive only below the default threshold. */
function fakeRunner(): { open: () => Promise<EvalRunner>; state: { opened: number; passes: Array<number | undefined> } } {
  const state = { opened: 0, passes: [] as Array<number | undefined> };
  const run = async (images: RgbImage[], options: RunOptions = {}): Promise<DetectedFace[][]> => {
    state.passes.push(options.minScore);
    return images.map(() => {
      const faces: DetectedFace[] = [{ box: { x: 50, y: 50, width: 40, height: 60 }, score: 0.9, keypoints: [], landmarks: [] }];
      if (options.minScore !== undefined) faces.push({ box: { x: 150, y: 150, width: 30, height: 30 }, score: 0.35, keypoints: [], landmarks: [] });
      return faces;
    });
  };
  const open = async (): Promise<EvalRunner> => {
    state.opened++;
    return { run, close: async () => {}, embedder: { name: 'x', dim: 3, chipSize: 150 }, models: { detector: { name: 'fake-detector', runtime: 'tfjs' } } as EvalRunner['models'], workers: 1 };
  };
  return { open, state };
}

describe('runDetectionEval', () => {
  it('every image of the folder counts; without a stored correction the figures are raw', async () => {
    const { open, state } = fakeRunner();
    const r = await runDetectionEval(open, { imagesDir: path.join(dir, 'images'), boxesFiles: [path.join(dir, 'boxes.txt')], correctionsFile: path.join(dir, 'none.json') });
    // IoU of the raw box with the truth is 2400 / 4320 (0.56): a match at 0.5
    expect(r).toMatchObject({ images: 4, groundTruth: 3, truePositives: 3, falsePositives: 1, detector: 'fake-detector', runtime: 'tfjs', iou: 0.5, workers: 1 });
    expect(r.boxCorrection).toEqual({ widthScale: 1, heightScale: 1, source: 'none stored for this detector: figures are raw' });
    expect(r.perImage.map((p) => p.image)).toEqual(['a.png', 'b.png', 'c.png', 'empty.png']);
    expect(r.atMaxFalsePositives).toMatchObject({ maxFpPerImage: 0.3, sweepMinScore: 0.3 });
    // the headline pass as configured, then the sweep down to 0.3
    expect(new Set(state.passes)).toEqual(new Set([undefined, 0.3]));
  });

  it('--fit-boxes fits and stores the correction, and the next run applies it; raw figures stay reported', async () => {
    const corrections = path.join(dir, 'corrections.json');
    const opts = { imagesDir: path.join(dir, 'images'), boxesFiles: [path.join(dir, 'boxes.txt')], correctionsFile: corrections, iou: 0.7, onlyListed: true };
    const fitted = await runDetectionEval(fakeRunner().open, { ...opts, fitBoxes: true, minFace: 16 });
    expect(fitted.boxCorrection.source).toBe(`fitted on these images and stored in ${corrections}`);
    expect(fitted.boxCorrection.widthScale).toBeGreaterThan(1);
    expect(fitted.images).toBe(3);
    expect(fitted.raw.recall).toBe(0);
    expect(fitted.recall).toBe(1);
    const stored = JSON.parse(await readFile(corrections, 'utf8'));
    expect(stored.detectors['fake-detector']).toMatchObject({ minFace: 16, iou: 0.7, maxFpPerImage: 0.3 });
    const again = await runDetectionEval(fakeRunner().open, opts);
    expect(again.boxCorrection.source).toMatch(/^stored \(fitted on .*boxes\.txt, \d{4}-\d\d-\d\d\)$/);
    expect(again.recall).toBe(1);
  });

  it('an image the boxes name but the folder lacks is one NOT_FOUND, before any model loads', async () => {
    await writeFile(path.join(dir, 'more.txt'), 'zz.png 1 1 20 20\n');
    const { open, state } = fakeRunner();
    await expect(runDetectionEval(open, { imagesDir: path.join(dir, 'images'), boxesFiles: [path.join(dir, 'boxes.txt'), path.join(dir, 'more.txt')] })).rejects.toThrow(
      /1 image\(s\) named in the boxes file are not in .*images, e\.g\. zz\.png/,
    );
    await expect(runDetectionEval(open, { imagesDir: path.join(dir, 'nowhere'), boxesFiles: [path.join(dir, 'boxes.txt')] })).rejects.toThrow(/cannot read folder/);
    expect(state.opened).toBe(0);
  });
});
