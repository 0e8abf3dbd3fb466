/**
 * The skin classifier's fit on synthetic labelled faces (a skin ellipse under a dark cap on a bluish ground),
 * with a scripted detector and a mesh that sees no face (so the landmark outline is used): no model loads.
 */
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FaceflowError } from '@faceflow/shared';
import type { Point } from '../image/geometry.js';
import { parseSkinClassifier } from '../segment/skin-classifier.js';
import { splitNames } from '../eval/segmentation-run.js';
import { chooseSkinFit, fitSkinClassifier, type SkinFitTools } from './skin-fit.js';

const W = 96, H = 112;
let dir: string;

/** 68 points: jaw on the ellipse's lower half, brows, nose, eyes, mouth where a frontal face has them */
function landmarks(dx: number): Point[] {
  const L = Array.from({ length: 68 }, () => ({ x: 48 + dx, y: 52 }));
  for (let i = 0; i <= 16; i++) { const a = Math.PI * (1 - i / 16); L[i] = { x: 48 + dx + 22 * Math.cos(a), y: 44 + 36 * Math.sin(a) * 0.9 }; }
  for (let i = 17; i <= 26; i++) L[i] = { x: 30 + dx + (i - 17) * 4, y: 38 };
  for (let i = 27; i <= 35; i++) L[i] = { x: 48 + dx + (i > 30 ? (i - 33) * 3 : 0), y: 44 + (i <= 30 ? (i - 27) * 4 : 16) };
  for (let i = 36; i <= 41; i++) L[i] = { x: 36 + dx + (i - 36) * 2, y: 44 + (i % 2) };
  for (let i = 42; i <= 47; i++) L[i] = { x: 52 + dx + (i - 42) * 2, y: 44 + (i % 2) };
  for (let i = 48; i <= 67; i++) L[i] = { x: 40 + dx + ((i - 48) % 10) * 1.8, y: 70 + (i < 58 ? 0 : 2) };
  return L;
}

const shift = (n: number): number => (n % 3) - 1;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'faceflow-skin-fit-'));
  await mkdir(path.join(dir, 'images'));
  await mkdir(path.join(dir, 'masks'));
  for (let n = 0; n < 6; n++) {
    let s = n + 1;
    const rnd = (): number => (s = (s * 1103515245 + 12345) % 2147483648) / 2147483648;
    const photo = Buffer.alloc(W * H * 3);
    const label = Buffer.alloc(W * H * 3);
    for (let y = 0; y < H; y++) {
      for (let x = 0; x < W; x++) {
        const inFace = ((x - 48 - shift(n)) / 22) ** 2 + ((y - 52) / 28) ** 2 <= 1;
        const cap = y < 30 && Math.abs(x - 48 - shift(n)) < 30;
        const base = inFace ? [205 - 4 * n, 150, 120 + 2 * n] : cap ? [70, 45, 30] : [90, 110, 140];
        const o = (y * W + x) * 3;
        for (let ch = 0; ch < 3; ch++) photo[o + ch] = Math.max(0, Math.min(255, base[ch]! + Math.round((rnd() - 0.5) * 30)));
        label.set(inFace ? [0, 255, 0] : cap ? [255, 0, 0] : [0, 0, 255], o);
      }
    }
    await sharp(photo, { raw: { width: W, height: H, channels: 3 } }).png().toFile(path.join(dir, 'images', `face${n}.png`));
    await sharp(label, { raw: { width: W, height: H, channels: 3 } }).png().toFile(path.join(dir, 'masks', `face${n}.png`));
  }
});
afterAll(async () => rm(dir, { recursive: true, force: true }));

function tools(log: string[]): () => Promise<SkinFitTools> {
  return async () => {
    log.push('open');
    let calls = 0;
    return {
      engine: {
        // the images in name order: face0, face1, ... (the fit reads them sorted)
        run: async () => {
          const dx = shift(calls++);
          return [[{ box: { x: 26 + dx, y: 24, width: 44, height: 56 }, score: 0.9, keypoints: [], landmarks: landmarks(dx) }]];
        },
      },
      mesh: { run: async () => [{ points: [], faceScore: 0 }] as never },
      close: () => void log.push('close'),
    };
  };
}

const options = () => ({ imagesDir: path.join(dir, 'images'), masksDir: path.join(dir, 'masks'), split: 'all' as const, folds: 3, trees: [4, 2], samples: 300, minPrecision: 0, seed: 3 });

describe('fitSkinClassifier', () => {
  it('fits on the split, chooses trees and threshold by cross-validation, and gives a file that loads', async () => {
    const log: string[] = [];
    const r = await fitSkinClassifier(tools(log), options());
    expect(log).toEqual(['open', 'close']);
    expect([r.images, r.allImages, r.skipped]).toEqual([6, 6, []]);
    expect(r.crossValidation.map((row) => row.trees)).toEqual([2, 4]);
    expect(r.crossValidation.every((row) => row.byThreshold.length === 29)).toBe(true);
    expect([2, 4]).toContain(r.chosen.trees);
    expect(r.file.trees).toHaveLength(r.chosen.trees);
    expect(r.file.threshold).toBe(r.chosen.threshold);
    expect(r.file.origin.trainedOn).toMatch(/^all 6 of 6 images/);
    expect(() => parseSkinClassifier(r.file, 'the fit')).not.toThrow();
    // skin vs a bluish ground and a dark cap is easy: the held-out masks overlap the skin label well
    expect(r.chosen.iou).toBeGreaterThan(0.5);
    // the same images and seed give the same trees
    const again = await fitSkinClassifier(tools([]), options());
    expect(again.file.trees).toEqual(r.file.trees);
  });

  it('too few images for the folds is INVALID_ARGUMENT before any model loads', async () => {
    const log: string[] = [];
    const e = await fitSkinClassifier(tools(log), { ...options(), split: 'even', folds: 4 }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(FaceflowError);
    expect((e as FaceflowError).message).toMatch(/^3 image\(s\) in .* \(split even\): need at least --folds 4/);
    expect(log).toEqual([]);
  });
});

describe('chooseSkinFit', () => {
  const table = [
    { trees: 20, byThreshold: [{ threshold: 0.4, iou: 0.8, precision: 0.94 }, { threshold: 0.5, iou: 0.75, precision: 0.96 }] },
    { trees: 40, byThreshold: [{ threshold: 0.4, iou: 0.82, precision: 0.95 }, { threshold: 0.5, iou: 0.75, precision: 0.97 }] },
  ];
  it('takes the best IoU among the thresholds precise enough, the first of equals', () => {
    expect(chooseSkinFit(table, 0.955)).toEqual({ trees: 20, threshold: 0.5, iou: 0.75, precision: 0.96 });
    expect(chooseSkinFit(table, 0.95)).toEqual({ trees: 40, threshold: 0.4, iou: 0.82, precision: 0.95 });
  });
  it('none precise enough is a clear error', () => {
    expect(() => chooseSkinFit(table, 0.99)).toThrow(/no ensemble size and threshold reaches cross-validated precision 0.99/);
  });
});

describe('splitNames', () => {
  it('sorts by name and takes every other one by index, or all', () => {
    const names = ['d.jpg', 'a.jpg', 'c.jpg', 'b.jpg', 'e.jpg'];
    expect(splitNames(names, 'even')).toEqual(['a.jpg', 'c.jpg', 'e.jpg']);
    expect(splitNames(names, 'odd')).toEqual(['b.jpg', 'd.jpg']);
    expect(splitNames(names, 'all')).toEqual(['a.jpg', 'b.jpg', 'c.jpg', 'd.jpg', 'e.jpg']);
  });
});
