/**
 * `node bench/dist/lfw-fusion.js --images <root> --train pairsDevTrain.txt --test pairsDevTest.txt --cache DIR`:
 * whether fusing the dlib ResNet and SFace pays (issue 11 step 4). A benchmark, not a test. It did not on LFW
 * View 1 (BENCHMARKS.md, Engine v2, "Recognition: fusion"), so no fused embedder ships; the embedder that
 * was built for it is in this branch's history (the commit that reverts it names it).
 *
 * 1. Embeds every image of both pairs files with both models through the `eval lfw` chain (YuNet detection,
 *    2x68 landmarks, each model on its own chip, flip averaging; the face nearest the centre, the centred
 *    45% box when none is found), once: the detector and landmarks run in the dlib engine and SFace embeds
 *    its chip of the same landmarks. Cached in DIR (one JSON file per pairs file), so the sweep re-runs free.
 * 2. Fusion on squared L2 of the two L2-normalised embeddings, d^2 = w d1^2 + (1 - w) d2^2: the L2 distance
 *    between [sqrt(w) e1, sqrt(1-w) e2] (what a fused embedder would output). For unit vectors
 *    d^2 = 2 - 2 cos, so this is also every linear score-level fusion of the two cosines (any affine score
 *    normalisation of each model only rescales w and the threshold): one sweep covers both.
 *    w is swept on the training pairs only: per w, accuracy at that w's best threshold, AUC and TAR at
 *    FAR 1e-3. The chosen w (best training accuracy, then best TAR, then nearest 0.5) and its training
 *    threshold are then applied unchanged to the test pairs (the test columns of the other w are printed
 *    for reading only). Each model alone (w = 1: dlib, w = 0: SFace) is in the same table.
 * 3. The distances at FAR 1e-3 .. 1e-6 over every cross-identity pair of the training images (as `eval lfw
 *    --all-pairs`, the same function), for the chosen w and each model alone.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { decodeImage } from '@faceflow/engine';
import { accuracyAt, allPairsImpostors, centreFace, evaluatePairs, lfwImagePath, readPairs, type LfwPairs } from '@faceflow/engine/eval';
import { openEngine } from '@faceflow/engine/recognize';

const DLIB = 'faceapi-recognition';
const SFACE = 'sface-2021dec-int8bq';
const FALLBACK_CENTER_FRACTION = 0.45;
const IN_FLIGHT = 16;

type Cache = Record<string, { dlib: number[]; sface: number[] } | null>;

function filesOf(set: LfwPairs, root: string): string[] {
  const files = new Set<string>();
  for (const p of set.pairs) {
    files.add(lfwImagePath(root, p.a.name, p.a.index));
    files.add(lfwImagePath(root, p.b.name, p.b.index));
  }
  return [...files];
}

async function embedAll(files: string[], workers: number): Promise<Cache> {
  const config = { models: { detector: 'yunet' } };
  const dlib = await openEngine({ ...config, models: { ...config.models, embedder: DLIB } }, workers);
  const sface = await openEngine({ ...config, models: { ...config.models, embedder: SFACE } }, workers);
  const out: Cache = {};
  let done = 0;
  try {
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < files.length) {
        const file = files[next++]!;
        const image = await decodeImage(file);
        const [faces] = await dlib.run([image], { fallbackCenterFraction: FALLBACK_CENTER_FRACTION });
        const face = centreFace(faces!, image.width, image.height);
        if (!face?.embedding) out[file] = null;
        else {
          const [s] = await sface.embedChips([sface.alignChip(image, face.landmarks)]);
          out[file] = { dlib: [...face.embedding], sface: [...s!] };
        }
        if (++done % 500 === 0) process.stderr.write(`embedded ${done}/${files.length}\n`);
      }
    };
    await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
  } finally {
    await dlib.close();
    await sface.close();
  }
  return out;
}

async function cached(set: LfwPairs, root: string, file: string, workers: number): Promise<Cache> {
  if (existsSync(file)) return JSON.parse(await readFile(file, 'utf8')) as Cache;
  const started = Date.now();
  const cache = await embedAll(filesOf(set, root), workers);
  process.stderr.write(`embedded ${Object.keys(cache).length} images in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
  await writeFile(file, JSON.stringify(cache));
  return cache;
}

function sq(a: number[], b: number[]): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i]! - b[i]!) ** 2;
  return s;
}

/** Each pair's squared distances under both models (null: a face missing, scored wrong as eval lfw does). */
function pairDistances(set: LfwPairs, root: string, cache: Cache) {
  return set.pairs.map((p) => {
    const a = cache[lfwImagePath(root, p.a.name, p.a.index)];
    const b = cache[lfwImagePath(root, p.b.name, p.b.index)];
    return { same: p.same, fold: p.fold, d: a && b ? { dlib: sq(a.dlib, b.dlib), sface: sq(a.sface, b.sface) } : null };
  });
}

function scoredAt(pairs: ReturnType<typeof pairDistances>, w: number) {
  return pairs.map((p) => (p.d ? { distance: Math.sqrt(w * p.d.dlib + (1 - w) * p.d.sface), same: p.same, fold: p.fold } : { distance: p.same ? 4 : 0, same: p.same, fold: p.fold, failed: true }));
}

const r = (v: number, d = 5): number => Math.round(v * 10 ** d) / 10 ** d;

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      images: { type: 'string' },
      train: { type: 'string' },
      test: { type: 'string' },
      cache: { type: 'string', default: '/tmp/faceflow-fusion' },
      workers: { type: 'string', default: '2' },
      step: { type: 'string', default: '0.05' },
    },
  });
  if (!values.images || !values.train || !values.test) throw new Error('usage: lfw-fusion --images ROOT --train pairsDevTrain.txt --test pairsDevTest.txt [--cache DIR] [--workers N] [--step 0.05]');
  const root = values.images;
  const workers = Number(values.workers);
  await mkdir(values.cache, { recursive: true });
  const [train, test] = await Promise.all([readPairs(values.train), readPairs(values.test)]);
  const trainCache = await cached(train, root, path.join(values.cache, `${path.basename(values.train)}.json`), workers);
  const testCache = await cached(test, root, path.join(values.cache, `${path.basename(values.test)}.json`), workers);
  const trainPairs = pairDistances(train, root, trainCache);
  const testPairs = pairDistances(test, root, testCache);

  const step = Number(values.step);
  const sweep = [];
  for (let k = 0; k <= Math.round(1 / step); k++) {
    const w = r(k * step, 4);
    const tr = evaluatePairs(train, scoredAt(trainPairs, w));
    const testScored = scoredAt(testPairs, w);
    const te = evaluatePairs(test, testScored, tr.bestThreshold);
    sweep.push({
      w,
      train: { accuracy: r(tr.bestAccuracy), threshold: r(tr.bestThreshold, 4), auc: r(tr.auc), tarAtFar1e3: r(tr.tarAtFar1e3), failedPairs: tr.failedPairs },
      // reported for reading only: w is chosen on the training pairs
      test: { accuracyAtTrainThreshold: r(accuracyAt(testScored, tr.bestThreshold)), bestAccuracy: r(te.bestAccuracy), auc: r(te.auc), tarAtFar1e3: r(te.tarAtFar1e3), failedPairs: te.failedPairs },
    });
  }
  const chosen = sweep.slice().sort((a, b) => b.train.accuracy - a.train.accuracy || b.train.tarAtFar1e3 - a.train.tarAtFar1e3 || Math.abs(a.w - 0.5) - Math.abs(b.w - 0.5))[0]!;
  const alone = { dlib: sweep.find((s) => s.w === 1), sface: sweep.find((s) => s.w === 0) };
  // the fused embeddings of the training images, [sqrt(w) e_dlib, sqrt(1-w) e_sface]: every cross-identity pair
  const allPairs = (w: number) =>
    allPairsImpostors(
      new Map(
        Object.entries(trainCache).map(([file, e]) => [file, e ? Float32Array.from([...e.dlib.map((v) => v * Math.sqrt(w)), ...e.sface.map((v) => v * Math.sqrt(1 - w))]) : null]),
      ),
    );
  const trainAllPairs = { chosen: allPairs(chosen.w), dlib: allPairs(1), sface: allPairs(0) };
  process.stdout.write(`${JSON.stringify({ images: { train: Object.keys(trainCache).length, test: Object.keys(testCache).length }, chosen, alone, trainAllPairs, sweep }, null, 1)}\n`);
}

main().catch((e: unknown) => {
  process.stderr.write(`lfw-fusion: ${(e as Error).message}\n`);
  process.exit(1);
});
