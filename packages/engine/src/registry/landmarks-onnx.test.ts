/**
 * The 68-point landmark net's conversion to ONNX (issue 11, pipeline latency): made by faceflow's own code
 * from the verified face-api weights, the same bytes on every run, recorded in the registry by its sha256,
 * installed by `models pull` like a download, and a converter fed the wrong network's weights is refused.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { convertLandmark68ToOnnx } from './landmarks-onnx.js';
import { ModelRegistry, pullModel, resolveModel, type ModelEntry } from './index.js';
import { failure } from '../testkit/failure.testkit.js';

const NAME = 'faceapi-landmarks68-onnx';
const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

let cacheDir: string;
beforeAll(async () => {
  cacheDir = await mkdtemp(join(tmpdir(), 'faceflow-landmarks-onnx-'));
});
afterAll(async () => {
  await rm(cacheDir, { recursive: true, force: true });
});

describe('the 68-point landmark net converted to ONNX', () => {
  it('is the same bytes on every run, the ones the registry entry records', async () => {
    const source = await resolveModel('faceapi-landmarks68');
    const a = await convertLandmark68ToOnnx(source.main);
    const b = await convertLandmark68ToOnnx(source.main);
    expect(sha256(a)).toBe(sha256(b));
    const file = new ModelRegistry().get(NAME).files[0]!;
    expect({ bytes: a.length, sha256: sha256(a) }).toEqual({ bytes: file.bytes, sha256: file.sha256 });
  });

  it('is made by models pull, verified into the cache, and not made again when it verifies', async () => {
    const r = await pullModel(NAME, { cacheDir, env: {} });
    expect(r.location).toBe('cache');
    expect(r.downloaded).toEqual(['face_landmark_68.onnx']);
    expect(await readdir(cacheDir)).toEqual([NAME]);
    expect((await pullModel(NAME, { cacheDir, env: {} })).downloaded).toEqual([]);
  });

  it('the dlib ResNet weights are not taken for the landmark net, and a converter for the wrong kind is refused', async () => {
    const dlib = await resolveModel('faceapi-recognition');
    const e = await failure(convertLandmark68ToOnnx(dlib.main));
    expect(e.code).toBe('MODEL_LOAD');
    expect(e.message).toBe(`${dlib.main} is not face-api's 68-point landmark net weights manifest: no "dense0/conv0/filters"; run \`faceflow models pull --force faceapi-landmarks68\``);
    const entry = new ModelRegistry().get(NAME);
    const wrong: ModelEntry = { ...entry, derived: { from: 'faceapi-recognition', converter: 'landmarks68-onnx' } };
    const empty = await mkdtemp(join(tmpdir(), 'faceflow-landmarks-onnx-wrong-'));
    try {
      const k = await failure(pullModel(wrong, { cacheDir: empty, env: {} }));
      expect(k.message).toBe(`model "${NAME}": converter landmarks68-onnx takes face-api weights of a landmarks model; "faceapi-recognition" is face-api-weights (embedder)`);
      expect(await readdir(empty)).toEqual([]);
    } finally {
      await rm(empty, { recursive: true, force: true });
    }
  });
});
