import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EnginePool } from './pool.js';
import { FaceEngine } from './engine.js';
import { decodeImage } from '../image/image.js';
import { l2Distance } from '../match/decide.js';
import { GROUP_PHOTOS, realFaces } from '../testkit/fixtures.testkit.js';

describe('EnginePool', () => {
  let pool: EnginePool;
  beforeAll(async () => {
    pool = await EnginePool.start({ backend: 'wasm' }, 2);
  });
  afterAll(async () => pool?.close());

  it('gives the same faces and embeddings as one engine in this thread', async () => {
    const images = await Promise.all(GROUP_PHOTOS.slice(0, 2).map((p) => decodeImage(p.file)));
    const engine = await FaceEngine.load({ backend: 'wasm' });
    try {
      const direct = await engine.run(images);
      const pooled = await pool.run(images);
      expect(pooled.map((f) => f.length)).toEqual(direct.map((f) => f.length));
      pooled.flat().forEach((f, i) => {
        const d = direct.flat()[i]!;
        expect(f.box.x).toBeCloseTo(d.box.x, 3);
        expect(l2Distance(f.embedding!, d.embedding!)).toBeLessThan(1e-5);
      });
      expect(pool.embedderInfo).toEqual(engine.embedderInfo);
    } finally {
      engine.dispose();
    }
  });

  it('reports a bad input as the FaceflowError the worker threw, and keeps working', async () => {
    await expect(pool.embedChips([new Uint8Array(10)], { split: false })).rejects.toMatchObject({ name: 'FaceflowError' });
    const img = await decodeImage(GROUP_PHOTOS[0]!.file);
    const [faces] = await pool.run([img], { embed: false });
    expect(realFaces(GROUP_PHOTOS[0]!, faces!).length).toBe(GROUP_PHOTOS[0]!.faces);
  });

  it('refuses a bad worker count by naming it', async () => {
    await expect(EnginePool.start({}, 0)).rejects.toMatchObject({ code: 'INVALID_CONFIG', message: expect.stringMatching(/workers/) });
  });

  it('close() lets in-flight work finish, then refuses new work', async () => {
    const p = await EnginePool.start({ backend: 'wasm' }, 1);
    const img = await decodeImage(GROUP_PHOTOS[1]!.file);
    const inflight = p.run([img], { embed: false });
    const closing = p.close(60_000);
    const [faces] = await inflight;
    expect(faces!.length).toBe(GROUP_PHOTOS[1]!.faces);
    await closing;
    await expect(p.run([img])).rejects.toThrow(/closed/);
  });
});
