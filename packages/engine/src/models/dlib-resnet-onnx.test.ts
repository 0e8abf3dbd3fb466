/**
 * The dlib ResNet on ONNX Runtime (issue 11 step 1), with the real converted file (`faceflow models pull
 * faceapi-recognition-onnx`, which scripts/fetch-models.sh runs): its embeddings equal the TF.js ones on
 * real faces to float precision (which is why the engine keeps the name faceapi-recognition), it batches,
 * releases its session and keeps RSS flat; the engine picks it by `runtime`.
 */
import { cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeImage } from '../image/image.js';
import { flipHorizontal } from '../image/geometry.js';
import { resolveModel } from '../registry/index.js';
import { DlibResNetEmbedder } from './embedder.js';
import { DlibResNetOnnxEmbedder } from './dlib-resnet-onnx.js';
import { FaceEngine } from '../recognize/engine.js';
import { GROUP_PHOTOS } from '../testkit/fixtures.testkit.js';
import { failure } from '../testkit/failure.testkit.js';
import { rssGrowthMb } from '../testkit/rss.testkit.js';

const NAME = 'faceapi-recognition-onnx';

/** dlib chips of every face of the first demo photos (and their mirror images), found by the TF.js engine. */
let chips: Uint8Array[] = [];
beforeAll(async () => {
  const engine = await FaceEngine.load({ backend: 'wasm', runtime: 'tfjs' });
  try {
    for (const photo of GROUP_PHOTOS.slice(0, 2)) {
      const img = await decodeImage(photo.file);
      const [faces] = await engine.run([img], { embed: false });
      for (const f of faces!) {
        const c = engine.alignChip(img, f.landmarks);
        chips.push(c, flipHorizontal(c, 150, 150));
      }
    }
  } finally {
    engine.dispose();
  }
});

describe('the dlib ResNet on ONNX Runtime', () => {
  it('gives the TF.js embeddings on real faces to float precision', async () => {
    expect(chips.length).toBeGreaterThanOrEqual(12);
    const tfjs = await DlibResNetEmbedder.load({ manifestPath: (await resolveModel('faceapi-recognition')).main });
    const onnx = await DlibResNetOnnxEmbedder.load({ modelPath: (await resolveModel(NAME)).main });
    try {
      const a = await tfjs.run(chips);
      const b = await onnx.run(chips);
      let maxAbs = 0;
      let minCos = 1;
      for (const [i, x] of a.entries()) {
        const y = b[i]!;
        expect(y).toHaveLength(128);
        let dot = 0;
        for (let k = 0; k < 128; k++) {
          maxAbs = Math.max(maxAbs, Math.abs(x[k]! - y[k]!));
          dot += x[k]! * y[k]!;
        }
        minCos = Math.min(minCos, dot);
      }
      // float32 rounding differs between the two runtimes' kernels (sum order); a wrong layer, padding or
      // weight moves components by 1e-2 and more
      expect(maxAbs).toBeLessThan(1e-5);
      expect(minCos).toBeGreaterThan(0.99999);
      // and different faces stay different (the comparison is not between constants)
      const cos01 = b[0]!.reduce((s, v, k) => s + v * b[2]![k]!, 0);
      expect(cos01).toBeLessThan(0.95);
    } finally {
      tfjs.dispose();
      await onnx.dispose();
    }
  });

  it('batches, releases its session and keeps rss flat over repeated calls', async () => {
    const emb = await DlibResNetOnnxEmbedder.load({ modelPath: (await resolveModel(NAME)).main, batchSize: 4 });
    const single = await emb.run([chips[3]!]);
    const batch = await emb.run(chips.slice(0, 6));
    for (let k = 0; k < 128; k++) expect(batch[3]![k]).toBeCloseTo(single[0]![k]!, 5);
    expect(Math.hypot(...batch[5]!)).toBeCloseTo(1, 5);
    // 20 calls of 6 chips move some 100 MB of tensors through ONNX Runtime; a leak of them shows here
    const growth = await rssGrowthMb(() => emb.run(chips.slice(0, 6)), 3, 20);
    expect(growth).toBeLessThan(48);
    await emb.dispose();
    await expect(emb.run([chips[0]!])).rejects.toThrow(/after dispose/);
  });

  it('refuses a chip of the wrong size naming it', async () => {
    const emb = await DlibResNetOnnxEmbedder.load({ modelPath: (await resolveModel(NAME)).main });
    try {
      await expect(emb.run([chips[0]!, new Uint8Array(112 * 112 * 3)])).rejects.toThrow('chip 1 has 37632 bytes, expected 150x150x3');
    } finally {
      await emb.dispose();
    }
  });
});

describe('the engine picks the dlib runtime by `runtime`', () => {
  let bare: string;
  beforeAll(async () => {
    // a model cache with YuNet and the converted landmarks (the other models of --runtime onnx) but not the
    // converted dlib file
    bare = await mkdtemp(join(tmpdir(), 'faceflow-no-dlib-onnx-'));
    for (const name of ['yunet-2023mar', 'faceapi-landmarks68-onnx']) await cp((await resolveModel(name)).dir, join(bare, name), { recursive: true });
  });
  afterAll(async () => {
    await rm(bare, { recursive: true, force: true });
  });

  const embedderOf = async (config: Parameters<typeof FaceEngine.load>[0]) => {
    const engine = await FaceEngine.load({ backend: 'wasm', ...config });
    try {
      return { ...engine.models.embedder, dim: engine.embedderInfo.dim };
    } finally {
      engine.dispose();
    }
  };

  it('onnx and auto take the converted file, tfjs the weights; the embedder keeps its name', async () => {
    expect(await embedderOf({ runtime: 'onnx' })).toEqual({ name: 'faceapi-recognition', runtime: 'onnx', dim: 128 });
    expect(await embedderOf({ runtime: 'auto' })).toEqual({ name: 'faceapi-recognition', runtime: 'onnx', dim: 128 });
    expect(await embedderOf({ runtime: 'tfjs' })).toEqual({ name: 'faceapi-recognition', runtime: 'tfjs', dim: 128 });
    expect(await embedderOf({ runtime: 'auto', models: { embedder: NAME } })).toEqual({ name: 'faceapi-recognition', runtime: 'onnx', dim: 128 });
  });

  it('auto without the converted file runs the weights on TF.js; a forced onnx names the command that installs it', async () => {
    expect(await embedderOf({ runtime: 'auto', cacheDir: bare })).toEqual({ name: 'faceapi-recognition', runtime: 'tfjs', dim: 128 });
    const e = await failure(FaceEngine.load({ backend: 'wasm', runtime: 'onnx', cacheDir: bare }));
    expect(e.code).toBe('NOT_FOUND');
    expect(e.message).toContain('embedder "faceapi-recognition" on --runtime onnx needs its converted file');
    expect(e.message).toContain(`faceflow models pull ${NAME}`);
    expect(e.message.split('\n')).toHaveLength(1);
  });

  it('the converted file forced onto tfjs is one line naming the fix', async () => {
    const e = await failure(FaceEngine.load({ backend: 'wasm', runtime: 'tfjs', models: { embedder: NAME } }));
    expect(e.message).toBe(`embedder "${NAME}" is an ONNX model but the runtime is forced to tfjs; use --embedder faceapi-recognition or --runtime auto`);
  });
});
