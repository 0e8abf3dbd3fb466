/**
 * The 68-point landmark net's conversion to ONNX (issue 11, pipeline latency): the weights of another face-api
 * network are refused naming the file and the fix, and so is a registry entry that feeds the converter
 * another kind of model. (Its bytes, sha256 and `models pull`: dlib-onnx.test.ts, for both conversions.)
 */
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { convertLandmark68ToOnnx } from './landmarks-onnx.js';
import { ModelRegistry, pullModel, resolveModel, type ModelEntry } from './index.js';
import { failure } from '../testkit/failure.testkit.js';

const NAME = 'faceapi-landmarks68-onnx';

describe('the 68-point landmark net converted to ONNX', () => {
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
