/** One tensor-leak test per model wrapper, plus load errors that name the problem. */
import { describe, expect, it } from 'vitest';
import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { initRuntime, tf } from '../runtime/tf.js';
import { defaultModelPaths } from '../recognize/engine.js';
import { BlazeFaceDetector } from './detector.js';
import { Landmark68, LANDMARK_INPUT } from './landmarks.js';
import { DlibResNetEmbedder, EMBED_INPUT } from './embedder.js';

const noise = (n: number): Uint8Array => Uint8Array.from({ length: n }, (_, i) => (i * 2654435761) % 251);

describe('model wrappers', () => {
  it('BlazeFaceDetector leaks no tensors and frees its weights on dispose', async () => {
    await initRuntime({ backend: 'wasm' });
    const start = tf.memory().numTensors;
    const paths = await defaultModelPaths();
    const det = await BlazeFaceDetector.load({ modelPath: paths.blazeface, regionModelPath: paths.regionDetector, minFaceSize: 20 });
    const img = { width: 640, height: 480, data: noise(640 * 480 * 3) };
    const near = [{ x: 100, y: 100, width: 60, height: 60 }];
    await det.run([img]);
    await det.run([img], [near]);
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) await det.run([img, img], [undefined, near]);
    expect(tf.memory().numTensors).toBe(before);
    det.dispose();
    expect(tf.memory().numTensors).toBe(start);
    await expect(det.run([img])).rejects.toThrow(/after dispose/);
  });

  it('Landmark68 leaks no tensors and frees its weights on dispose', async () => {
    await initRuntime({ backend: 'wasm' });
    const start = tf.memory().numTensors;
    const lm = await Landmark68.load({ manifestPath: (await defaultModelPaths()).landmarks, batchSize: 4 });
    const crop = noise(LANDMARK_INPUT * LANDMARK_INPUT * 3);
    await lm.run([crop]);
    const before = tf.memory().numTensors;
    const out = await lm.run([crop, crop, crop, crop, crop]);
    expect(out).toHaveLength(5);
    expect(out[0]).toHaveLength(68);
    expect(tf.memory().numTensors).toBe(before);
    lm.dispose();
    expect(tf.memory().numTensors).toBe(start);
  });

  it('DlibResNetEmbedder leaks no tensors, batches consistently, and frees its weights on dispose', async () => {
    await initRuntime({ backend: 'wasm' });
    const start = tf.memory().numTensors;
    const emb = await DlibResNetEmbedder.load({ manifestPath: (await defaultModelPaths()).embedder, batchSize: 2 });
    const a = noise(EMBED_INPUT * EMBED_INPUT * 3);
    const b = a.map((v) => 255 - v);
    const [single] = await emb.run([a]);
    const before = tf.memory().numTensors;
    const batch = await emb.run([b, a, b]);
    expect(tf.memory().numTensors).toBe(before);
    // the same chip gives the same embedding alone or inside a batch
    for (let i = 0; i < 128; i++) expect(batch[1]![i]).toBeCloseTo(single![i]!, 4);
    expect(Math.hypot(...single!)).toBeCloseTo(1, 5);
    emb.dispose();
    expect(tf.memory().numTensors).toBe(start);
  });

  it('a model path that is missing or not a model is a clear error', async () => {
    await initRuntime({ backend: 'wasm' });
    await expect(BlazeFaceDetector.load({ modelPath: '/nonexistent/model.json' })).rejects.toMatchObject({ code: 'NOT_FOUND' });
    const dir = await mkdtemp(path.join(os.tmpdir(), 'faceflow-model-'));
    await writeFile(path.join(dir, 'model.json'), '{"hello": 1}');
    await expect(BlazeFaceDetector.load({ modelPath: path.join(dir, 'model.json') })).rejects.toMatchObject({ code: 'MODEL_LOAD' });
    await expect(DlibResNetEmbedder.load({ manifestPath: path.join(dir, 'model.json') })).rejects.toMatchObject({ code: 'MODEL_LOAD' });
  });
});
