import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initRuntime, tf } from '../runtime/tf.js';
import { Rng } from '../eval/rng.js';
import { trainHead, trainStep, splitIdentities, type TrainIdentity } from './trainer.js';
import { ProjectionHead, readHeadMeta, readHeadMetaSync, headIdentifyThreshold, headEmbedderName, parseHeadEmbedderName } from '../models/head.js';
import { buildHeadModel, saveHead } from './head.js';
import { calibrateFar } from '../eval/far.js';
import { tripletLoss } from './triplet.js';

/**
 * A small identity set made here: each person is a random direction in 32-d; each image is that direction plus
 * a little noise plus a strong "camera" nuisance in a fixed 6-d subspace (what degradation does to a real base
 * embedding). A head that learns to ignore the nuisance subspace separates the people much better.
 */
function syntheticSet(people: number, images: number, seed: number, copies = 1): TrainIdentity[] {
  const D = 32;
  const rng = new Rng(seed);
  const unit = (v: number[]): Float32Array => {
    const n = Math.hypot(...v) || 1;
    return Float32Array.from(v.map((x) => x / n));
  };
  return Array.from({ length: people }, (_, p) => {
    const centre = Array.from({ length: D }, (_, k) => (k < 6 ? 0 : rng.normal()));
    const cn = Math.hypot(...centre);
    return {
      name: `person${String(p).padStart(3, '0')}`,
      samples: Array.from({ length: images }, (_, i) => ({
        key: `person${p}/${i}`,
        copies: Array.from({ length: copies }, () =>
          unit(centre.map((c, k) => c / cn + 0.08 * rng.normal() + (k < 6 ? 0.6 * rng.normal() : 0))),
        ),
      })),
    };
  });
}

let tmp: string;
beforeAll(async () => {
  await initRuntime({ backend: 'cpu' });
  tmp = await mkdtemp(path.join(os.tmpdir(), 'faceflow-train-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

const quick = { epochs: 12, p: 8, k: 4, lr: 0.01, patience: 20, seed: 7, valFraction: 0.25, monitor: 'loss' as const };

describe('training a projection head', () => {
  it('the loss falls and validation improves on a small identity set', async () => {
    const data = syntheticSet(40, 5, 1);
    const r = await trainHead(data, quick);
    try {
      // semi-hard mining keeps choosing triplets inside the margin, so the mined loss stays of the order of
      // alpha; the loss on the fixed validation triplets is the one that must fall
      const val = r.history.map((h) => h.valLoss);
      expect(val[val.length - 1]!).toBeLessThan(val[0]! * 0.3);
      for (let i = 1; i < val.length; i++) expect(val[i]!).toBeLessThan(val[i - 1]! + 0.01);
      expect(r.best.loss).toBeLessThan(r.base.loss * 0.3);
      expect(r.best.accuracy).toBeGreaterThan(r.base.accuracy);
      expect(r.improved).toBe(true);
      expect(r.thresholdSource).toBe('validation-identities');
      expect(r.threshold).toBeGreaterThan(0);
      expect(r.threshold).toBeLessThan(2);
      // validation identities never appear in training
      expect(r.split.validation.some((n) => r.split.train.includes(n))).toBe(false);
      expect(r.split.validation).toHaveLength(10);
    } finally {
      r.model.dispose();
    }
  });

  it('records an identify threshold: the distance at FAR 1e-3 on the validation impostor pairs, under the verify one', async () => {
    const data = syntheticSet(40, 5, 1);
    const r = await trainHead(data, { ...quick, epochs: 3 });
    try {
      // 10 validation identities x 5 images: 50 x 49 / 2 pairs, less 10 x (5 x 4 / 2) genuine ones
      expect(r.far).toMatchObject({ far: 1e-3, impostorPairs: 1125, falseAccepts: 1, resolved: true, sampled: false });
      expect(r.baseFar.impostorPairs).toBe(1125);
      expect(r.distanceAtFar1e3).toBe(Math.min(r.far.distance, r.threshold));
      expect(r.distanceAtFar1e3).toBeLessThanOrEqual(r.threshold);
      expect(r.distanceAtFar1e3).toBeGreaterThan(0);
      // the same number from the validation embeddings of the returned head, recomputed here
      const names = r.split.validation;
      const rows = data.filter((p) => names.includes(p.name)).flatMap((p, id) => p.samples.map((s) => ({ id, v: s.copies[0]! })));
      const emb = tf.tidy(() => {
        const y = r.model.predict(tf.tensor2d(rows.map((x) => Array.from(x.v)))) as import('@tensorflow/tfjs').Tensor2D;
        return tf.div(y, tf.norm(y, 'euclidean', 1, true)).dataSync() as Float32Array;
      });
      const again = calibrateFar(emb, 32, rows.map((x) => x.id), { seed: 1 });
      expect(again.impostorPairs).toBe(1125);
      expect(again.distance).toBeCloseTo(r.far.distance, 5);
      // few validation people: 2 identities x 3 images = 9 impostor pairs, unresolved (the smallest one)
      const small = await trainHead(syntheticSet(6, 3, 2), { ...quick, epochs: 1, valFraction: 0.3 });
      small.model.dispose();
      expect(small.far).toMatchObject({ impostorPairs: 9, falseAccepts: 0, resolved: false });
    } finally {
      r.model.dispose();
    }
  });

  it('with random negatives the training loss itself falls', async () => {
    const r = await trainHead(syntheticSet(40, 5, 1), { ...quick, mining: 'random' });
    r.model.dispose();
    const train = r.history.slice(1).map((h) => h.trainLoss!);
    expect(train[train.length - 1]!).toBeLessThan(train[0]! * 0.5);
    expect(r.best.accuracy).toBeGreaterThan(r.base.accuracy);
  });

  it('the same seed gives the same head, byte for byte; another seed another head', async () => {
    const data = syntheticSet(20, 4, 2);
    const cfg = { ...quick, epochs: 3, head: 'mlp' as const, hidden: 16, dim: 16 };
    const weights: Buffer[] = [];
    for (const [i, seed] of [[0, 3], [1, 3], [2, 4]] as const) {
      const r = await trainHead(data, { ...cfg, seed });
      const dir = path.join(tmp, `same-seed-${i}`);
      await saveHead(r.model, dir, { name: 't', baseModel: 'synthetic', kind: 'mlp', inputDim: 32, dim: 16, hidden: 16, threshold: r.threshold, thresholdSource: r.thresholdSource });
      r.model.dispose();
      weights.push(await readFile(path.join(dir, 'weights.bin')));
    }
    expect(weights[0]!.length).toBe((32 * 16 + 16 + 32 * 16 + 16 + 16 * 16 + 16) * 4);
    expect(weights[0]!.equals(weights[1]!)).toBe(true);
    expect(weights[0]!.equals(weights[2]!)).toBe(false);
  });

  it('early stopping restores the best epoch', async () => {
    const data = syntheticSet(24, 4, 5);
    // a huge learning rate makes validation worse after the first epochs
    const r = await trainHead(data, { ...quick, lr: 0.5, epochs: 40, patience: 2, monitor: 'accuracy' });
    try {
      expect(r.history.length).toBeLessThan(41);
      expect(r.stoppedEarly).toBe(true);
      const best = r.history.find((h) => h.epoch === r.bestEpoch)!;
      expect(r.best.accuracy).toBe(best.valAccuracy);
      for (const h of r.history) expect(h.valAccuracy).toBeLessThanOrEqual(best.valAccuracy);
      expect(r.history.length - 1 - r.bestEpoch).toBe(2);
    } finally {
      r.model.dispose();
    }
  });

  it('bad data: one identity is an error; identities with one image do not count', async () => {
    const one = syntheticSet(1, 5, 3);
    await expect(trainHead(one, quick)).rejects.toThrow(/at least 2 identities.*found 1 \(person000\)/);
    const lonely = syntheticSet(6, 1, 3);
    await expect(trainHead(lonely, quick)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect(() => splitIdentities(['a', 'b', 'c'], 0.5, 1)).toThrow(/cannot be split/);
    expect(splitIdentities(['a', 'b', 'c'], 0, 1)).toEqual({ train: ['a', 'b', 'c'], validation: [] });
    await expect(trainHead(syntheticSet(6, 3, 3), { ...quick, k: 1 })).rejects.toThrow(/k must be/);
  });

  it('a training step and a whole run free every tensor they create', async () => {
    const data = syntheticSet(12, 4, 4);
    const model = buildHeadModel({ kind: 'mlp', inputDim: 32, dim: 32, hidden: 8 }, 1);
    const opt = tf.train.adam(0.01);
    const flat = new Float32Array(16 * 32);
    const labels: number[] = [];
    for (let i = 0; i < 16; i++) {
      flat.set(data[i % 4]!.samples[Math.floor(i / 4)]!.copies[0]!, i * 32);
      labels.push(i % 4);
    }
    const step = () => trainStep(model, opt, flat, labels, { inputDim: 32, mining: 'semi-hard', alpha: 0.2, rng: new Rng(1) });
    step(); // the first step creates Adam's slots
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) step();
    expect(tf.memory().numTensors).toBe(before);
    opt.dispose();
    model.dispose();

    const start = tf.memory().numTensors;
    const r = await trainHead(data, { ...quick, epochs: 2, valFraction: 0 });
    expect(r.thresholdSource).toBe('training-identities');
    r.model.dispose();
    expect(tf.memory().numTensors).toBe(start);
  });
});

describe('the loss the trainer minimises', () => {
  it('tripletLoss gradients with respect to anchor, positive and negative match the hand-computed ones', async () => {
    // one violating triplet (|a-p|^2 = 0.5, |a-n|^2 = 0.58, alpha 0.2 -> loss 0.12) and one satisfied triplet
    const a = [[1, 0], [1, 0]];
    const p = [[0.5, 0.5], [1, 0]];
    const n = [[0.7, -0.7], [-1, 0]];
    const [A, P, N] = [a, p, n].map((x) => tf.tensor2d(x)) as [import('@tensorflow/tfjs').Tensor2D, import('@tensorflow/tfjs').Tensor2D, import('@tensorflow/tfjs').Tensor2D];
    const loss = tripletLoss(A, P, N);
    expect((await loss.data())[0]).toBeCloseTo(0.25 + 0.25 - (0.09 + 0.49) + 0.2, 6);
    const [gA, gP, gN] = tf.grads((x: import('@tensorflow/tfjs').Tensor, y: import('@tensorflow/tfjs').Tensor, z: import('@tensorflow/tfjs').Tensor) => tripletLoss(x, y, z))([A, P, N]);
    // dL/da = 2(n - p), dL/dp = 2(p - a), dL/dn = 2(a - n) for the violating triplet; zero for the other
    const close = async (t: import('@tensorflow/tfjs').Tensor, want: number[][]): Promise<void> => {
      const got = (await t.array()) as number[][];
      got.forEach((row, i) => row.forEach((v, k) => expect(v).toBeCloseTo(want[i]![k]!, 5)));
    };
    await close(gA!, [[2 * (0.7 - 0.5), 2 * (-0.7 - 0.5)], [0, 0]]);
    await close(gP!, [[2 * (0.5 - 1), 2 * (0.5 - 0)], [0, 0]]);
    await close(gN!, [[2 * (1 - 0.7), 2 * (0 + 0.7)], [0, 0]]);
    tf.dispose([A, P, N, loss, gA!, gP!, gN!]);
  });
});

describe('ProjectionHead', () => {
  it('loads a saved head, matches the trained model, and frees its tensors', async () => {
    const data = syntheticSet(16, 4, 9);
    const r = await trainHead(data, { ...quick, epochs: 2 });
    const dir = path.join(tmp, 'head');
    const meta = await saveHead(r.model, dir, { name: 'site-a', baseModel: 'synthetic', kind: 'linear', inputDim: 32, dim: 32, threshold: r.threshold, thresholdSource: r.thresholdSource, training: { seed: 7 } });
    const input = data[0]!.samples.map((s) => s.copies[0]!);
    const expected = tf.tidy(() => {
      const y = r.model.predict(tf.tensor2d(input.map((v) => Array.from(v)))) as import('@tensorflow/tfjs').Tensor2D;
      return tf.div(y, tf.norm(y, 'euclidean', 1, true)).arraySync() as number[][];
    });
    r.model.dispose();

    const start = tf.memory().numTensors;
    const head = await ProjectionHead.load({ dir });
    expect(head.meta).toEqual(await readHeadMeta(dir));
    expect(head.threshold).toBe(meta.threshold);
    expect(head.embedderName('base')).toBe(`base+head:site-a@${meta.weightsSha256.slice(0, 8)}`);
    const out = await head.run(input);
    expect(out).toHaveLength(input.length);
    out.forEach((v, i) => {
      expect(Math.hypot(...v)).toBeCloseTo(1, 5);
      v.forEach((x, k) => expect(x).toBeCloseTo(expected[i]![k]!, 5));
    });
    await expect(head.run([new Float32Array(5)])).rejects.toThrow(/takes 32/);
    head.dispose();
    expect(tf.memory().numTensors).toBe(start);
    await expect(head.run(input)).rejects.toThrow(/after dispose/);
  });

  it('carries its FAR-1e-3 distance; a head saved without one loads and falls back to its accuracy-optimal threshold', async () => {
    const r = await trainHead(syntheticSet(8, 3, 9), { ...quick, epochs: 1, valFraction: 0 });
    const withFar = path.join(tmp, 'with-far');
    const without = path.join(tmp, 'without-far');
    const common = { baseModel: 'synthetic', kind: 'linear' as const, inputDim: 32, dim: 32, threshold: 0.9, thresholdSource: 'training-identities' as const };
    const meta = await saveHead(r.model, withFar, { ...common, name: 'new', distanceAtFar1e3: 0.7, far: r.far });
    await saveHead(r.model, without, { ...common, name: 'old' });
    r.model.dispose();
    expect(readHeadMetaSync(withFar)).toEqual(await readHeadMeta(withFar));
    expect(headIdentifyThreshold(meta)).toEqual({ threshold: 0.7, fallback: false });
    const a = await ProjectionHead.load({ dir: withFar });
    const b = await ProjectionHead.load({ dir: without });
    expect([a.threshold, a.distanceAtFar1e3]).toEqual([0.9, 0.7]);
    expect([b.threshold, b.distanceAtFar1e3]).toEqual([0.9, 0.9]);
    expect(headIdentifyThreshold(b.meta)).toEqual({ threshold: 0.9, fallback: true });
    a.dispose();
    b.dispose();
    const name = headEmbedderName('base', meta);
    expect(parseHeadEmbedderName(name)).toEqual({ base: 'base', head: { name: 'new', sha256Prefix: meta.weightsSha256.slice(0, 8) } });
    expect(parseHeadEmbedderName('faceapi-recognition')).toEqual({ base: 'faceapi-recognition' });
    const { writeFile } = await import('node:fs/promises');
    await writeFile(path.join(without, 'head.json'), JSON.stringify({ ...meta, distanceAtFar1e3: 'low' }));
    await expect(readHeadMeta(without)).rejects.toThrow(/"distanceAtFar1e3" must be a distance in \(0, 2\]/);
  });

  it('refuses a folder that is not a head, or whose weights changed', async () => {
    await expect(ProjectionHead.load({ dir: path.join(tmp, 'nothing') })).rejects.toMatchObject({ code: 'NOT_FOUND' });
    const data = syntheticSet(8, 3, 9);
    const r = await trainHead(data, { ...quick, epochs: 1, valFraction: 0 });
    const dir = path.join(tmp, 'tampered');
    await saveHead(r.model, dir, { name: 'x', baseModel: 'synthetic', kind: 'linear', inputDim: 32, dim: 32, threshold: 1, thresholdSource: 'training-identities' });
    r.model.dispose();
    const { writeFile } = await import('node:fs/promises');
    const w = await readFile(path.join(dir, 'weights.bin'));
    w[0] = w[0]! ^ 0xff;
    await writeFile(path.join(dir, 'weights.bin'), w);
    await expect(ProjectionHead.load({ dir })).rejects.toMatchObject({ code: 'MODEL_INTEGRITY' });
  });
});
