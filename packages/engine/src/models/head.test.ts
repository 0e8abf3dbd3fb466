/**
 * A projection head in the engine (EngineConfig.head): applied after the base embedding, it changes the
 * embeddings, their name and the thresholds (verify's and identify's), and nothing else of the pipeline.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FaceEngine } from '../recognize/engine.js';
import { EnginePool } from '../recognize/pool.js';
import { decodeImage } from '../image/image.js';
import { tf } from '../runtime/tf.js';
import { ProjectionHead, type HeadMeta } from './head.js';
import { buildHeadModel, saveHead } from '../train/head.js';
import { thresholdsFor } from '../match/decision.js';
import { GROUP_PHOTOS } from '../testkit/fixtures.testkit.js';

let tmp: string;
let base: FaceEngine;
let meta: HeadMeta;
const headDir = (): string => path.join(tmp, 'head');

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'faceflow-head-'));
  base = await FaceEngine.load({ backend: 'wasm' });
  // an untrained mlp head (seeded random hidden layer, zero residual) after a random 128 -> 64 projection
  const model = buildHeadModel({ kind: 'mlp', inputDim: 128, dim: 64, hidden: 32 }, 11);
  meta = await saveHead(model, headDir(), { name: 'test', baseModel: base.embedderInfo.name, kind: 'mlp', inputDim: 128, dim: 64, hidden: 32, threshold: 0.777, thresholdSource: 'validation-identities', distanceAtFar1e3: 0.555 });
  // the same weights as written before heads recorded a FAR-1e-3 distance
  await saveHead(model, path.join(tmp, 'old'), { name: 'test', baseModel: base.embedderInfo.name, kind: 'mlp', inputDim: 128, dim: 64, hidden: 32, threshold: 0.777, thresholdSource: 'validation-identities' });
  model.dispose();
  const other = buildHeadModel({ kind: 'linear', inputDim: 128, dim: 128 }, 1);
  await saveHead(other, path.join(tmp, 'other'), { name: 'other', baseModel: 'some-other-model', kind: 'linear', inputDim: 128, dim: 128, threshold: 1, thresholdSource: 'validation-identities' });
  other.dispose();
});
afterAll(async () => {
  base?.dispose();
  await rm(tmp, { recursive: true, force: true });
});

describe('FaceEngine with a projection head', () => {
  it('embeds through the head, under its own name and threshold; faces are otherwise unchanged', async () => {
    const engine = await FaceEngine.load({ backend: 'wasm', head: headDir() });
    const head = await ProjectionHead.load({ dir: headDir() });
    try {
      expect(engine.embedderInfo).toEqual({ name: `faceapi-recognition+head:test@${meta.weightsSha256.slice(0, 8)}`, dim: 64, chipSize: 150, threshold: 0.777, distanceAtFar1e3: 0.555 });
      expect(engine.calibratedThreshold).toBe(0.777);
      expect(engine.calibratedDistanceAtFar1e3).toBe(0.555);
      expect(base.embedderInfo.threshold).toBeUndefined();
      // without a head: the shipped calibration of the base model
      expect([base.calibratedThreshold, base.calibratedDistanceAtFar1e3]).toEqual([0.4109, 0.3805]);

      const image = await decodeImage(GROUP_PHOTOS[0]!.file);
      const [withHead] = await engine.run([image]);
      const [plain] = await base.run([image]);
      expect(withHead!.length).toBe(plain!.length);
      const expected = await head.run(plain!.map((f) => f.embedding!));
      withHead!.forEach((f, i) => {
        expect(f.box).toEqual(plain![i]!.box);
        expect(f.landmarks).toEqual(plain![i]!.landmarks);
        expect(f.embedding!.length).toBe(64);
        expect(Math.hypot(...f.embedding!)).toBeCloseTo(1, 5);
        f.embedding!.forEach((v, k) => expect(v).toBeCloseTo(expected[i]![k]!, 5));
      });
      const chips = (await base.alignedChips([image]))[0]!;
      const direct = await engine.embedChips(chips);
      direct.forEach((v, i) => v.forEach((x, k) => expect(x).toBeCloseTo(expected[i]![k]!, 5)));
    } finally {
      engine.dispose();
      head.dispose();
    }
  });

  it('refuses a head trained on another base model, and leaks nothing either way', async () => {
    const before = tf.memory().numTensors;
    await expect(FaceEngine.load({ backend: 'wasm', head: path.join(tmp, 'other') })).rejects.toMatchObject({ code: 'INVALID_CONFIG', message: expect.stringMatching(/trained on "some-other-model"/) });
    await expect(FaceEngine.load({ backend: 'wasm', head: path.join(tmp, 'missing') })).rejects.toMatchObject({ code: 'NOT_FOUND' });
    expect(tf.memory().numTensors).toBe(before);
    const engine = await FaceEngine.load({ backend: 'wasm', head: headDir() });
    const image = await decodeImage(GROUP_PHOTOS[1]!.file);
    await engine.run([image]);
    const mid = tf.memory().numTensors;
    await engine.run([image]);
    expect(tf.memory().numTensors).toBe(mid);
    engine.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('a head without a FAR-1e-3 distance (written before heads recorded one) loads, and identify falls back to its threshold', async () => {
    const engine = await FaceEngine.load({ backend: 'wasm', head: path.join(tmp, 'old') });
    try {
      expect(engine.embedderInfo).toMatchObject({ name: `faceapi-recognition+head:test@${meta.weightsSha256.slice(0, 8)}`, threshold: 0.777, distanceAtFar1e3: 0.777, distanceAtFar1e3Fallback: true });
      expect(engine.calibratedDistanceAtFar1e3).toBe(0.777);
      expect(thresholdsFor(engine.embedderInfo)).toEqual({ threshold: 0.777, distanceAtFar1e3: 0.777, source: 'model', fallback: true });
    } finally {
      engine.dispose();
    }
  });

  it('an engine pool takes the head too (the path of services and faceflow run)', async () => {
    const pool = await EnginePool.start({ backend: 'wasm', head: headDir() }, 1);
    try {
      expect(pool.embedderInfo.name).toMatch(/\+head:test@/);
      expect(pool.embedderInfo.threshold).toBe(0.777);
      expect(thresholdsFor(pool.embedderInfo)).toEqual({ threshold: 0.777, distanceAtFar1e3: 0.555, source: 'model', fallback: false });
      const [faces] = await pool.run([await decodeImage(GROUP_PHOTOS[0]!.file)]);
      expect(faces![0]!.embedding!.length).toBe(64);
    } finally {
      await pool.close();
    }
  });
});
