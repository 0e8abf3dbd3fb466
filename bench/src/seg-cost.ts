/**
 * `node bench/dist/seg-cost.js --images <dir> [--split all|even|odd] [--limit N] [--scale S] [--rounds R] [--warmup N]`:
 * issue 4's cost target ("segmentation costs no more than 30% of the embedder's per-face time") measured
 * with each side in a block of its own. `faceflow eval seg` times segmentation and the embedder face by
 * face, interleaved with detection and image decoding; its CPU figures then also carry the work that V8's
 * helper threads (concurrent marking, sweeping, compilation) do for the whole process while a face is timed
 * (BENCHMARKS.md: about one full collection per face there). Here the images are decoded and the faces
 * found first (untimed); then each round times the default segmentation (`mesh+grow`: face mesh, learned
 * grow classifier) over every face, and the embedder (alignment + the flip-averaged embedding the engine
 * computes) over every face, as two blocks, so the collections each side causes fall in its own block.
 * Rounds alternate which block goes first. Prints one JSON line; asserts nothing.
 */
import path from 'node:path';
import { readdir } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { FaceEngine, FaceSegmenter, decodeImage, resolveModel, type DetectedFace as Face, type RgbImage } from '@faceflow/engine';
import { centreFace, splitNames } from '@faceflow/engine/eval';
import { loadSkinClassifier } from '@faceflow/engine/segment';

const { values } = parseArgs({
  options: {
    images: { type: 'string' },
    limit: { type: 'string', default: '60' },
    scale: { type: 'string', default: '1' },
    rounds: { type: 'string', default: '4' },
    warmup: { type: 'string', default: '10' },
    split: { type: 'string', default: 'all' },
  },
});
const usage = 'usage: seg-cost --images <dir> [--split all|even|odd] [--limit N] [--scale 1..4] [--rounds R] [--warmup N]\n';
const limit = Number(values.limit);
const scale = Number(values.scale);
const rounds = Number(values.rounds);
const warmup = Number(values.warmup);
const split = values.split;
if (split !== 'all' && split !== 'even' && split !== 'odd') {
  process.stderr.write(usage);
  process.exit(2);
}
if (!values.images || !(limit >= 1) || !(scale >= 1 && scale <= 4) || !(rounds >= 1) || !(warmup >= 0)) {
  process.stderr.write(usage);
  process.exit(2);
}

// the same images as `eval seg --split S --limit N`: sorted, every other one for even / odd, then the first N
const names = splitNames((await readdir(values.images)).filter((f) => /\.(jpe?g|png|webp)$/i.test(f)), split).slice(0, limit);
if (names.length === 0) {
  process.stderr.write(`no images in ${values.images}\n`);
  process.exit(2);
}
const engine = await FaceEngine.load({ backend: process.env.FACEFLOW_BACKEND ?? 'wasm' });
const segmenter = await FaceSegmenter.load({ method: 'mesh', meshModelPath: (await resolveModel('facemesh')).main, skinClassifier: await loadSkinClassifier() });

// decode (enlarged as `eval seg --scale` does: Lanczos) and find the centre face, untimed
const items: Array<{ image: RgbImage; face: Face }> = [];
for (const name of names) {
  const file = path.join(values.images, name);
  let image: RgbImage;
  if (scale === 1) image = await decodeImage(file);
  else {
    const meta = await sharp(file).metadata();
    image = await decodeImage(await sharp(file).resize({ width: Math.round(meta.width! * scale), height: Math.round(meta.height! * scale), kernel: 'lanczos3', fit: 'fill' }).png().toBuffer());
  }
  const [faces] = await engine.run([image], { embed: false, fallbackCenterFraction: 0.45 });
  items.push({ image, face: centreFace(faces!, image.width, image.height)! });
}

const segmentAll = async (list: typeof items): Promise<void> => {
  for (const { image, face } of list) await segmenter.run([image], [[face]], { grow: true });
};
const embedAll = async (list: typeof items): Promise<void> => {
  for (const { image, face } of list) await engine.embedChips([engine.alignChip(image, face.landmarks)]);
};
const cpuMs = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};
const timed = async (fn: () => Promise<void>): Promise<{ wall: number; cpu: number }> => {
  const t0 = performance.now();
  const c0 = cpuMs();
  await fn();
  return { wall: (performance.now() - t0) / items.length, cpu: (cpuMs() - c0) / items.length };
};

const warm = items.slice(0, Math.max(1, warmup));
await segmentAll(warm);
await embedAll(warm);
const perRound: Array<{ first: string; segWallMs: number; segCpuMs: number; embedWallMs: number; embedCpuMs: number; wallRatio: number; cpuRatio: number }> = [];
for (let r = 0; r < rounds; r++) {
  const segFirst = r % 2 === 0;
  let seg: { wall: number; cpu: number };
  let emb: { wall: number; cpu: number };
  if (segFirst) {
    seg = await timed(() => segmentAll(items));
    emb = await timed(() => embedAll(items));
  } else {
    emb = await timed(() => embedAll(items));
    seg = await timed(() => segmentAll(items));
  }
  const r2 = (x: number): number => Math.round(x * 100) / 100;
  perRound.push({
    first: segFirst ? 'segmentation' : 'embedder',
    segWallMs: r2(seg.wall), segCpuMs: r2(seg.cpu), embedWallMs: r2(emb.wall), embedCpuMs: r2(emb.cpu),
    wallRatio: Math.round((seg.wall / emb.wall) * 1000) / 1000,
    cpuRatio: Math.round((seg.cpu / emb.cpu) * 1000) / 1000,
  });
}
segmenter.dispose();
engine.dispose();
const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
process.stdout.write(
  `${JSON.stringify({
    images: items.length,
    split,
    scale,
    rounds,
    warmup: warm.length,
    method: 'mesh+grow (default: learned grow classifier)',
    embedder: engine.embedderInfo.name,
    medianWallRatio: median(perRound.map((r) => r.wallRatio)),
    medianCpuRatio: median(perRound.map((r) => r.cpuRatio)),
    perRound,
  })}\n`,
);
