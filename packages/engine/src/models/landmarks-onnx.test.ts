/**
 * The 68-point landmarks on ONNX Runtime (issue 11, pipeline latency), with the real converted file
 * (`faceflow models pull faceapi-landmarks68-onnx`, which scripts/fetch-models.sh runs): its points equal
 * the TF.js net's on real face crops to float precision, a crop gives the same points alone and in a
 * batch, the session is released and RSS stays flat; the engine picks it by `runtime`.
 */
import { cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeImage } from '../image/image.js';
import { boundingBox } from '../image/geometry.js';
import { resolveModel } from '../registry/index.js';
import { Landmark68, LANDMARK_INPUT } from './landmarks.js';
import { Landmark68Onnx } from './landmarks-onnx.js';
import { cropSquare } from '../recognize/align.js';
import { FaceEngine } from '../recognize/engine.js';
import { GROUP_PHOTOS, realFaces } from '../testkit/fixtures.testkit.js';
import { failure } from '../testkit/failure.testkit.js';
import { rssGrowthMb } from '../testkit/rss.testkit.js';

const NAME = 'faceapi-landmarks68-onnx';

/**
 * The engine's two landmark crops of every real face of the demo photos: the first pass's around the
 * detector's box (scale 1.3) and the refining pass's around the TF.js landmarks (scale 1.25).
 */
let crops: Uint8Array[] = [];
beforeAll(async () => {
  const engine = await FaceEngine.load({ backend: 'wasm', runtime: 'tfjs' });
  try {
    for (const photo of GROUP_PHOTOS) {
      const img = await decodeImage(photo.file);
      const [faces] = await engine.run([img], { embed: false });
      for (const f of realFaces(photo, faces!)) {
        crops.push(cropSquare(img, f.box, 1.3, LANDMARK_INPUT).pixels, cropSquare(img, boundingBox(f.landmarks), 1.25, LANDMARK_INPUT).pixels);
      }
    }
  } finally {
    engine.dispose();
  }
});

describe('the 68 landmarks on ONNX Runtime', () => {
  it('give the TF.js points on real face crops to float precision', async () => {
    expect(crops.length).toBeGreaterThanOrEqual(40);
    const tfjs = await Landmark68.load({ manifestPath: (await resolveModel('faceapi-landmarks68')).main });
    const onnx = await Landmark68Onnx.load({ modelPath: (await resolveModel(NAME)).main });
    try {
      const a = await tfjs.run(crops);
      const b = await onnx.run(crops);
      expect(b).toHaveLength(crops.length);
      let maxAbs = 0;
      for (const [i, pa] of a.entries()) {
        expect(b[i]).toHaveLength(68);
        pa.forEach((p, k) => {
          maxAbs = Math.max(maxAbs, Math.abs(p.x - b[i]![k]!.x), Math.abs(p.y - b[i]![k]!.y));
        });
      }
      // float32 rounding differs between the two runtimes' kernels (sum order): some 1e-5 px; a wrong
      // padding, layer or weight layout moves points by pixels
      expect(maxAbs).toBeLessThan(0.01);
      // and the points are a face's, not constants: the chin is below the eyes, different crops differ
      expect(b[0]![8]!.y).toBeGreaterThan(b[0]![36]!.y + 10);
      expect(Math.abs(b[0]![30]!.x - b[2]![30]!.x) + Math.abs(b[0]![30]!.y - b[2]![30]!.y)).toBeGreaterThan(0.5);
    } finally {
      tfjs.dispose();
      await onnx.dispose();
    }
  });

  it('a crop gives the same points alone and in a batch of 5 (and across batch calls of 2)', async () => {
    const lm = await Landmark68Onnx.load({ modelPath: (await resolveModel(NAME)).main, batchSize: 2 });
    const whole = await Landmark68Onnx.load({ modelPath: (await resolveModel(NAME)).main });
    try {
      const [single] = await whole.run([crops[3]!]);
      const batched = await whole.run(crops.slice(0, 5));
      const split = await lm.run(crops.slice(0, 5));
      for (const other of [batched[3]!, split[3]!]) {
        single!.forEach((p, k) => {
          expect(Math.abs(p.x - other[k]!.x)).toBeLessThan(1e-4);
          expect(Math.abs(p.y - other[k]!.y)).toBeLessThan(1e-4);
        });
      }
    } finally {
      await lm.dispose();
      await whole.dispose();
    }
  });

  it('releases its session and keeps rss flat over repeated calls; a call after dispose throws', async () => {
    const lm = await Landmark68Onnx.load({ modelPath: (await resolveModel(NAME)).main });
    const batch = crops.slice(0, 8);
    // 40 calls of 8 crops move some 50 MB of input and activations through ONNX Runtime; a leak shows here
    const growth = await rssGrowthMb(() => lm.run(batch), 5, 40);
    expect(growth).toBeLessThan(32);
    await lm.dispose();
    await expect(lm.run([crops[0]!])).rejects.toThrow('landmark model used after dispose()');
    await lm.dispose();
  });

  it('refuses a crop of the wrong size naming it', async () => {
    const lm = await Landmark68Onnx.load({ modelPath: (await resolveModel(NAME)).main });
    try {
      await expect(lm.run([crops[0]!, new Uint8Array(150 * 150 * 3)])).rejects.toThrow('crop 1 has 67500 bytes, expected 112x112x3');
    } finally {
      await lm.dispose();
    }
  });

  it('a file that is not the conversion is one line naming the command that restores it', async () => {
    const e = await failure(Landmark68Onnx.load({ modelPath: (await resolveModel('faceapi-recognition-onnx')).main }));
    expect(e.code).toBe('MODEL_LOAD');
    expect(e.message).toContain(`faceflow models pull --force ${NAME}`);
    expect(e.message.split('\n')).toHaveLength(1);
  });
});

describe('the engine picks the landmarks runtime by `runtime`', () => {
  let bare: string;
  beforeAll(async () => {
    // a model cache with YuNet and the converted dlib file (the other models of --runtime onnx) but not
    // the converted landmarks
    bare = await mkdtemp(join(tmpdir(), 'faceflow-no-landmarks-onnx-'));
    for (const name of ['yunet-2023mar', 'faceapi-recognition-onnx']) await cp((await resolveModel(name)).dir, join(bare, name), { recursive: true });
  });
  afterAll(async () => {
    await rm(bare, { recursive: true, force: true });
  });

  const modelsOf = async (config: Parameters<typeof FaceEngine.load>[0]) => {
    const engine = await FaceEngine.load({ backend: 'wasm', ...config });
    try {
      return engine.models;
    } finally {
      engine.dispose();
    }
  };

  it('onnx and auto take the converted file, tfjs the weights; the landmarks keep their name', async () => {
    expect((await modelsOf({ runtime: 'onnx' })).landmarks).toEqual({ name: 'faceapi-landmarks68', runtime: 'onnx' });
    expect((await modelsOf({})).landmarks).toEqual({ name: 'faceapi-landmarks68', runtime: 'onnx' });
    expect((await modelsOf({ runtime: 'tfjs' })).landmarks).toEqual({ name: 'faceapi-landmarks68', runtime: 'tfjs' });
    expect((await modelsOf({ runtime: 'auto', models: { landmarks: NAME } })).landmarks).toEqual({ name: 'faceapi-landmarks68', runtime: 'onnx' });
  });

  it('auto without the converted file runs the weights on TF.js; a forced onnx names the command that installs it', async () => {
    expect((await modelsOf({ runtime: 'auto', cacheDir: bare })).landmarks).toEqual({ name: 'faceapi-landmarks68', runtime: 'tfjs' });
    const e = await failure(FaceEngine.load({ backend: 'wasm', runtime: 'onnx', cacheDir: bare }));
    expect(e.code).toBe('NOT_FOUND');
    expect(e.message).toContain('landmarks "faceapi-landmarks68" on --runtime onnx need their converted file');
    expect(e.message).toContain(`faceflow models pull ${NAME}`);
    expect(e.message.split('\n')).toHaveLength(1);
  });

  it('the converted file forced onto tfjs, and another landmarks model, are one line naming the fix', async () => {
    const e = await failure(FaceEngine.load({ backend: 'wasm', runtime: 'tfjs', models: { landmarks: NAME } }));
    expect(e.message).toBe(`landmarks "${NAME}" are an ONNX model but the runtime is forced to tfjs; use the landmarks model faceapi-landmarks68 or --runtime auto`);
    const other = await failure(FaceEngine.load({ backend: 'wasm', models: { landmarks: 'facemesh' } }));
    expect(other.message).toBe('landmarks model "facemesh" is not supported; the aligner needs the 68-point faceapi-landmarks68');
  });

  it('the engine finds the same faces with the same landmarks on either runtime', async () => {
    const onnx = await FaceEngine.load({ backend: 'wasm' });
    const tfjs = await FaceEngine.load({ backend: 'wasm', models: { embedder: 'faceapi-recognition' }, runtime: 'auto', cacheDir: bare });
    try {
      expect(tfjs.models.landmarks.runtime).toBe('tfjs');
      const img = await decodeImage(GROUP_PHOTOS[1]!.file);
      const [a] = await onnx.run([img]);
      const [b] = await tfjs.run([img]);
      expect(a!.length).toBe(b!.length);
      let maxAbs = 0;
      let maxEmb = 0;
      a!.forEach((f, i) => {
        f.landmarks.forEach((p, k) => (maxAbs = Math.max(maxAbs, Math.abs(p.x - b![i]!.landmarks[k]!.x), Math.abs(p.y - b![i]!.landmarks[k]!.y))));
        f.embedding!.forEach((v, k) => (maxEmb = Math.max(maxEmb, Math.abs(v - b![i]!.embedding![k]!))));
      });
      expect(maxAbs).toBeLessThan(0.05);
      expect(maxEmb).toBeLessThan(1e-3);
    } finally {
      onnx.dispose();
      tfjs.dispose();
    }
  });
});
