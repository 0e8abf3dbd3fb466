/**
 * `npm run -s bench:cluster -- --images ../shared/data/lfw/images [--pairs ../shared/data/lfw/pairsDevTest.txt]
 * [--thresholds far1e4,far1e3,0.30] [--seeds 1,2,3] [--limit N] [--workers W] [--json]`: accuracy of the
 * unknown-face clusterer (issue 14, item 3) on LFW identities. An evaluation, not a speed benchmark.
 *
 * The people: every identity named in `--pairs` (default View 1 pairsDevTest.txt, person-disjoint from the
 * pairsDevTrain images the thresholds were calibrated on), with every image of theirs under `--images`:
 * identities with several images are the recurring strangers, those with one image the strangers seen
 * once. Each image is embedded by the default engine chain (EnginePool, the centre face as `faceflow eval
 * lfw` takes it) and fed to a fresh UnknownClusterer as one unknown track, in an order shuffled by each
 * seed; the scores (eval/cluster.ts: purity, completeness, pairwise precision/recall, singletons merged)
 * are printed per threshold, the mean over the seeds. `far1e4` / `far1e3` are the model's calibrated
 * distances (clusterThreshold, decisionThreshold 'identify').
 */
import { readdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { decodeImage, EnginePool } from '@faceflow/engine';
import { centreFace, evaluateClustering, readPairs, type ClusterScores, type LabelledEmbedding } from '@faceflow/engine/eval';
import { decisionThreshold } from '@faceflow/engine';
import { clusterThreshold } from '@faceflow/engine/match';

const log = (msg: string): void => void process.stderr.write(`[bench:cluster] ${msg}\n`);

const { values } = parseArgs({
  options: {
    images: { type: 'string' },
    pairs: { type: 'string', default: '../shared/data/lfw/pairsDevTest.txt' },
    thresholds: { type: 'string', default: 'far1e4,far1e3,0.30' },
    seeds: { type: 'string', default: '1,2,3' },
    limit: { type: 'string' },
    workers: { type: 'string' },
    json: { type: 'boolean', default: false },
  },
});

function fail(msg: string): never {
  process.stderr.write(`bench:cluster: ${msg}\n`);
  process.exit(2);
}

if (!values.images) fail('--images DIR is required (the LFW images folder, e.g. ../shared/data/lfw/images)');
const seeds = values.seeds.split(',').map(Number);
if (seeds.some((s) => !Number.isInteger(s))) fail(`--seeds must be comma-separated integers; got "${values.seeds}"`);
const limit = values.limit === undefined ? Infinity : Number(values.limit);
if (!(limit > 0)) fail(`--limit must be a positive number of images; got "${values.limit}"`);
const workers = values.workers === undefined ? os.availableParallelism() : Number(values.workers);
if (!(Number.isInteger(workers) && workers >= 1)) fail(`--workers must be a positive integer; got "${values.workers}"`);

const set = await readPairs(values.pairs);
const names = [...new Set(set.pairs.flatMap((p) => [p.a.name, p.b.name]))].sort();
const files: { label: string; file: string }[] = [];
for (const name of names) {
  const dir = path.join(values.images, name);
  const entries = (await readdir(dir)).filter((f) => /\.(jpe?g|png)$/i.test(f)).sort();
  for (const f of entries) files.push({ label: name, file: path.join(dir, f) });
}
if (files.length > limit) files.length = limit;
log(`${names.length} identities, ${files.length} images; embedding with ${workers} worker(s)`);

const pool = await EnginePool.start({}, workers);
const items: LabelledEmbedding[] = [];
let fallback = 0;
try {
  let done = 0;
  const queue = files.map((f, i) => ({ ...f, i }));
  const out: (LabelledEmbedding | null)[] = new Array(files.length).fill(null);
  await Promise.all(
    Array.from({ length: workers * 4 }, async () => {
      for (let job = queue.shift(); job; job = queue.shift()) {
        const image = await decodeImage(job.file);
        const [faces] = await pool.run([image], { fallbackCenterFraction: 0.45 });
        const face = centreFace(faces!, image.width, image.height);
        if (face && face.score === 0) fallback++;
        if (face?.embedding) out[job.i] = { label: job.label, embedding: face.embedding };
        if (++done % 200 === 0) log(`${done}/${files.length}`);
      }
    }),
  );
  for (const x of out) if (x) items.push(x);
} finally {
  await pool.close();
}
const info = pool.embedderInfo;
log(`${items.length} embeddings (${fallback} on the centred fallback box, ${files.length - items.length} without a face)`);

const far1e4 = clusterThreshold(info);
if (far1e4.warning) log(far1e4.warning);
const far1e3 = decisionThreshold(info, 'identify');
const thresholds = values.thresholds.split(',').map((t) => {
  if (t === 'far1e4') return { name: `FAR 1e-4 (${far1e4.value})`, value: far1e4.value };
  if (t === 'far1e3') return { name: `FAR 1e-3 (${far1e3.value})`, value: far1e3.value };
  const v = Number(t);
  if (!(v > 0 && v <= 2)) fail(`--thresholds: "${t}" is neither far1e4, far1e3 nor a distance in (0, 2]`);
  return { name: String(v), value: v };
});

const mean = (rows: ClusterScores[]): ClusterScores => {
  const r = { ...rows[0]! };
  for (const k of Object.keys(r) as (keyof ClusterScores)[]) r[k] = rows.reduce((s, x) => s + x[k], 0) / rows.length;
  return r;
};
const r4 = (x: number): number => Math.round(x * 10000) / 10000;

const results = thresholds.map((t) => {
  const runs = seeds.map((seed) => evaluateClustering(items, { threshold: t.value }, seed));
  const m = mean(runs);
  const row = {
    threshold: t.name,
    distance: t.value,
    embedder: info.name,
    seeds: seeds.length,
    ...Object.fromEntries(Object.entries(m).map(([k, v]) => [k, r4(v)])),
    purityMin: r4(Math.min(...runs.map((x) => x.purity))),
    completenessMin: r4(Math.min(...runs.map((x) => x.completeness))),
  };
  if (values.json) process.stdout.write(`${JSON.stringify(row)}\n`);
  return { t, m, row };
});

if (!values.json) {
  const pct = (x: number): string => `${(100 * x).toFixed(2)}%`;
  process.stdout.write(`| threshold | clusters | mixed clusters | purity | completeness | pair precision | pair recall | singletons merged | merges |\n|---|---|---|---|---|---|---|---|---|\n`);
  for (const { t, m } of results) {
    process.stdout.write(
      `| ${t.name} | ${m.clusters.toFixed(1)} | ${m.mixedClusters.toFixed(1)} | ${pct(m.purity)} | ${pct(m.completeness)} | ${pct(m.pairPrecision)} | ${pct(m.pairRecall)} | ${m.singletonsMerged.toFixed(1)} / ${m.singletons} | ${m.merges.toFixed(1)} |\n`,
    );
  }
  const m0 = results[0]!.m;
  process.stdout.write(`\n${m0.items} images, ${m0.identities} identities (${m0.recurringIdentities} with several images, ${m0.singletons} with one), mean of ${seeds.length} seeded orders\n`);
}
