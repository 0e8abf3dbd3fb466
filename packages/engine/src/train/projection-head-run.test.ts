/**
 * `faceflow train`'s orchestration (issue 13): identity folders in, a head folder out, over a fake base engine
 * whose embedding of an image is its colour, spread over a few dimensions.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DetectedFace } from '../recognize/engine.js';
import type { RgbImage } from '../image/geometry.js';
import { centralLargestFace, trainProjectionHead, type TrainEngine } from './projection-head-run.js';

let dir: string;
const CHIP = 16;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'faceflow-head-run-'));
  for (let p = 0; p < 6; p++) {
    await mkdir(path.join(dir, 'people', `person${p}`), { recursive: true });
    for (let i = 0; i < 3; i++) {
      const background = { r: 40 * p + 10, g: 200 - 30 * p + 5 * i, b: 60 + 3 * i };
      await writeFile(path.join(dir, 'people', `person${p}`, `${i}.png`), await sharp({ create: { width: 32, height: 32, channels: 3, background } }).png().toBuffer());
    }
  }
  await mkdir(path.join(dir, 'people', 'zz_lonely'));
  await writeFile(path.join(dir, 'people', 'zz_lonely', 'only.png'), await readFile(path.join(dir, 'people', 'person0', '0.png')));
  await writeFile(path.join(dir, 'people', 'person1', 'broken.jpg'), 'not a jpeg');
});
afterAll(async () => rm(dir, { recursive: true, force: true }));

function fakeEngine(): { open: () => Promise<TrainEngine>; state: { opened: number; closed: number } } {
  const state = { opened: 0, closed: 0 };
  const engine: TrainEngine = {
    run: async (images: RgbImage[]): Promise<DetectedFace[][]> =>
      images.map((im) => [{ box: { x: 4, y: 4, width: im.width - 8, height: im.height - 8 }, score: 0.9, keypoints: [], landmarks: [] }]),
    alignChip: (image) => {
      const chip = new Uint8Array(CHIP * CHIP * 3);
      for (let i = 0; i < chip.length; i++) chip[i] = image.data[i % 3]!;
      return chip;
    },
    embedChips: async (chips) =>
      chips.map((c) => {
        const v = Float32Array.from({ length: 8 }, (_, k) => Math.sin((k + 1) * (c[0]! / 40 + c[1]! / 90 + c[2]! / 300)));
        const n = Math.hypot(...v);
        return v.map((x) => x / n);
      }),
    embedderInfo: { name: 'fake-base', dim: 8, chipSize: CHIP },
    close: async () => void state.closed++,
  };
  return {
    open: async () => {
      state.opened++;
      return engine;
    },
    state,
  };
}

describe('trainProjectionHead', () => {
  it('writes the head folder and its report, with the data\'s warnings and an unresolved FAR said once each', async () => {
    const { open, state } = fakeEngine();
    const out = path.join(dir, 'head');
    const warnings: string[] = [];
    const epochs: number[] = [];
    const run = await trainProjectionHead(open, {
      data: path.join(dir, 'people'), out, name: 'site', config: { head: 'linear', epochs: 2, p: 3, k: 2, dim: 4, seed: 7, valFraction: 0.34, monitor: 'accuracy', mining: 'semi-hard' },
      augment: [], copies: 0, engine: { backend: 'cpu' }, workers: 1, cacheDir: null, warn: (w) => warnings.push(w), onEpoch: (r) => epochs.push(r.epoch),
    });
    expect(state).toEqual({ opened: 1, closed: 1 });
    expect(epochs).toEqual([0, 1, 2]);
    expect(warnings.some((w) => /identity "zz_lonely" skipped: only one image/.test(w))).toBe(true);
    expect(warnings.some((w) => /broken\.jpg skipped/.test(w))).toBe(true);
    expect(warnings.filter((w) => /impostor pairs among the validation identities: FAR 1e-3 needs 1000/.test(w))).toHaveLength(1);
    const { report } = run;
    expect(report.embedder).toMatch(/^fake-base\+head:site@[0-9a-f]{8}$/);
    expect(report).toMatchObject({ head: out, thresholdSource: 'validation-identities', plot: path.join(out, 'loss.png'), warnings });
    expect(report.training).toMatchObject({ identities: 6, images: 18, copies: 0, epochsRun: 2, augmentStage: 'chip', flip: true, fallbackCenter: null });
    expect(report.embedding.cache).toBeNull();
    expect([run.inputDim, run.dim]).toEqual([8, 4]);
    expect(JSON.parse(await readFile(path.join(out, 'report.json'), 'utf8'))).toEqual(JSON.parse(JSON.stringify(report)));
    expect(JSON.parse(await readFile(path.join(out, 'head.json'), 'utf8'))).toMatchObject({ name: 'site', baseModel: 'fake-base', kind: 'linear', inputDim: 8, dim: 4 });
    expect((await readFile(path.join(out, 'loss.png'))).subarray(1, 4).toString()).toBe('PNG');
  });

  it('a folder with one usable identity fails before the engine opens', async () => {
    const { open, state } = fakeEngine();
    await mkdir(path.join(dir, 'one', 'alice'), { recursive: true });
    for (const n of ['1.png', '2.png']) await writeFile(path.join(dir, 'one', 'alice', n), await readFile(path.join(dir, 'people', 'person0', '0.png')));
    await expect(
      trainProjectionHead(open, { data: path.join(dir, 'one'), out: path.join(dir, 'h1'), name: 'x', config: {}, augment: [], copies: 0, engine: {}, workers: 1, cacheDir: null }),
    ).rejects.toThrow(/1 identity with two or more images \(alice\)/);
    expect(state.opened).toBe(0);
  });

  it('a training image\'s face is the largest containing the centre, else the largest', () => {
    const f = (x: number, y: number, s: number) => ({ box: { x, y, width: s, height: s } });
    expect(centralLargestFace([f(0, 0, 30), f(40, 40, 20)], 100, 100)).toEqual(f(40, 40, 20));
    expect(centralLargestFace([f(0, 0, 30), f(60, 60, 20)], 100, 100)).toEqual(f(0, 0, 30));
    expect(centralLargestFace([], 100, 100)).toBeUndefined();
  });
});
