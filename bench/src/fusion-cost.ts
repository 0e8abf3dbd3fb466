/**
 * `node bench/dist/fusion-cost.js --faces <dir> [--limit 200] [--workers 1,2] [--batch 8]`: faces/s of the
 * fused dlib ResNet + SFace embedder beside each of its parts (issue 11 step 4), in one process, on the same
 * faces. A benchmark, not a test: it measures and prints.
 *  - embed: the network(s) alone on aligned chips, no flip, calls of `batch` chips sent to an EnginePool of
 *    W workers (as bench:engine's runtimes section); each model on its own chip of the same landmarks.
 *  - end to end: decoded image -> YuNet -> 2x68 landmarks -> chip(s) -> embedding with flip averaging (the
 *    product's settings), one image per call, 16 in flight.
 * Every pool is warmed up on each worker first. Detector: YuNet for all (the chain the fusion was fitted in).
 */
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { decodeImage, EnginePool, FaceEngine, type RgbImage } from '@faceflow/engine';

const MODELS = ['faceapi-recognition', 'sface-2021dec-int8bq', 'fused-dlib-sface'];

async function listFaces(dir: string, limit: number): Promise<string[]> {
  const out: string[] = [];
  for (const person of (await readdir(dir)).sort()) {
    for (const f of (await readdir(path.join(dir, person))).sort()) {
      if (f.endsWith('.jpg')) out.push(path.join(dir, person, f));
      break;
    }
    if (out.length >= limit) break;
  }
  return out;
}

async function time<T>(f: () => Promise<T>): Promise<[T, number]> {
  const t = process.hrtime.bigint();
  const r = await f();
  return [r, Number(process.hrtime.bigint() - t) / 1e9];
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { faces: { type: 'string' }, limit: { type: 'string', default: '200' }, workers: { type: 'string', default: '1,2' }, batch: { type: 'string', default: '8' } } });
  if (!values.faces) throw new Error('--faces <dir> is required (e.g. ../shared/data/lfw/images)');
  const images: RgbImage[] = await Promise.all((await listFaces(values.faces, Number(values.limit))).map((f) => decodeImage(f)));
  const batch = Number(values.batch);
  // one face per image and its landmarks, found once; each model's own chip of them
  const finder = await FaceEngine.load({ backend: 'wasm', flip: false, models: { detector: 'yunet' } });
  const found = await finder.run(images, { embed: false, maxFaces: 1 });
  finder.dispose();
  const faces = found.flatMap((fs, i) => fs.map((f) => ({ image: images[i]!, landmarks: f.landmarks })));
  const rows: Array<Record<string, unknown>> = [];
  for (const workers of values.workers!.split(',').map(Number)) {
    for (const model of MODELS) {
      const config = { backend: 'wasm', models: { detector: 'yunet', embedder: model } };
      const noFlip = await EnginePool.start({ ...config, flip: false }, workers);
      try {
        const probe = await FaceEngine.load({ ...config, flip: false });
        const chips = faces.map((f) => probe.alignChip(f.image, f.landmarks));
        probe.dispose();
        await noFlip.embedChips(chips.slice(0, workers));
        const calls: Uint8Array[][] = [];
        for (let i = 0; i < chips.length; i += batch) calls.push(chips.slice(i, i + batch));
        const [, t] = await time(() => Promise.all(calls.map((c) => noFlip.embedChips(c, { split: false }))));
        rows.push({ job: 'embed (aligned chips, no flip)', model, workers, batch, faces: chips.length, seconds: +t.toFixed(2), facesPerSecond: +(chips.length / t).toFixed(1) });
      } finally {
        await noFlip.close();
      }
      const pool = await EnginePool.start(config, workers);
      try {
        await pool.run(images.slice(0, workers));
        let next = 0;
        const [, t] = await time(() =>
          Promise.all(
            Array.from({ length: 16 }, async () => {
              while (next < images.length) await pool.run([images[next++]!], { maxFaces: 1 });
            }),
          ),
        );
        rows.push({ job: 'end to end (YuNet, 2x68 landmarks, flip)', model, workers, images: images.length, seconds: +t.toFixed(2), imagesPerSecond: +(images.length / t).toFixed(1) });
      } finally {
        await pool.close();
      }
      process.stderr.write(`${JSON.stringify(rows.slice(-2))}\n`);
    }
  }
  process.stdout.write(`${JSON.stringify(rows, null, 1)}\n`);
}

main().catch((e: unknown) => {
  process.stderr.write(`fusion-cost: ${(e as Error).message}\n`);
  process.exit(1);
});
