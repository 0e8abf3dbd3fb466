/**
 * `npm run -s bench:search -- [--sizes 10000,100000,1000000] [--methods exact,int8,hnsw] [--real GALLERY.json]
 * [--queries N] [--threshold T] [--margin M] [--hnsw-rerank 64,256] [--ivf-nprobe 32,64] [--ivf-lists L] [--json]`: 1:N search at scale (issue 14). A benchmark, not a test.
 *
 * The gallery: the real identities of `--real` (a gallery file, e.g. from `faceflow enroll --dir` over LFW
 * people: every identity with two or more embeddings is enrolled without its last one, which becomes a query
 * of an enrolled person; identities with one embedding are strangers, queried and never enrolled), filled up
 * to the size with distractors drawn to resemble real faces: mixtures (weights 0.25-0.75) of two enrolled
 * real embeddings plus noise, so
 * that some lie near real people (random unit vectors in 128-d are far from everything and would flatter an
 * approximate index); the log compares their distances to the queries with the real impostor distances. Without `--real`, the same mixtures of random "people". Queries: the real ones (or
 * perturbed gallery entries and random strangers).
 *
 * For each size, one gallery; each method answers the same queries through the engine's Gallery (searchWith),
 * and `agreement` is the share of queries whose identify() decision (identity or unknown, and why) equals the
 * exact search's; `recall1` the share whose nearest identity is exact search's. Per query and per batch of
 * 10 (a frame of ten faces), p50/p99 in ms; build: enrolment of all identities plus what the method builds
 * (int8 copy, HNSW graph, IVF quantiser and lists; hnsw and ivf are built by separate runs); RSS of the process after the method's structures exist.
 */
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { decisionThreshold, Gallery, identify, type IdentifyResult } from '@faceflow/engine';
import { DEFAULT_MODEL, type DecisionRule, type SearchMethod } from '@faceflow/engine/match';
import { defaultIvfLists, defaultNprobe } from '@faceflow/engine/search';
import { parseGalleryFile } from '@faceflow/shared';

const log = (msg: string): void => void process.stderr.write(`[bench:search] ${msg}\n`);

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
}

function gauss(r: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
}

function normalise(v: Float32Array): Float32Array {
  let n = 0;
  for (const x of v) n += x * x;
  n = Math.sqrt(n);
  for (let i = 0; i < v.length; i++) v[i]! /= n;
  return v;
}

interface RealSet {
  enrolled: { name: string; embeddings: Float32Array[] }[];
  queries: { embedding: Float32Array; expect: string | null }[];
  pool: Float32Array[];
  dim: number;
}

async function loadReal(file: string): Promise<RealSet> {
  const content = parseGalleryFile(await readFile(file, 'utf8'), file);
  const enrolled: RealSet['enrolled'] = [];
  const queries: RealSet['queries'] = [];
  const pool: Float32Array[] = [];
  for (const id of content.identities) {
    const embs = id.embeddings.map((e) => Float32Array.from(e));
    if (embs.length >= 2) {
      pool.push(...embs.slice(0, -1)); // distractors are drawn from enrolled shots only, never from a query

      enrolled.push({ name: `real:${id.id}`, embeddings: embs.slice(0, -1) });
      queries.push({ embedding: embs[embs.length - 1]!, expect: `real:${id.id}` });
    } else {
      queries.push({ embedding: embs[0]!, expect: null });
    }
  }
  return { enrolled, queries, pool, dim: pool[0]!.length };
}

function syntheticReal(dim: number, r: () => number): RealSet {
  const people = Array.from({ length: 600 }, () => normalise(Float32Array.from({ length: dim }, () => gauss(r))));
  const shot = (c: Float32Array): Float32Array => normalise(c.map((x) => x + 0.03 * gauss(r)));
  const enrolled = people.slice(0, 300).map((c, i) => ({ name: `p${i}`, embeddings: [shot(c), shot(c)] }));
  const queries = [...people.slice(0, 300).map((c, i) => ({ embedding: shot(c), expect: `p${i}` as string | null })), ...people.slice(300).map((c) => ({ embedding: shot(c), expect: null }))];
  return { enrolled, queries, pool: people, dim };
}

/** A distractor like a real face: a mixture of two real embeddings plus noise of about their spread. */
function distractor(pool: Float32Array[], dim: number, r: () => number, noise: number): Float32Array {
  const a = pool[Math.floor(r() * pool.length)]!;
  const b = pool[Math.floor(r() * pool.length)]!;
  const w = 0.25 + 0.5 * r();
  const v = new Float32Array(dim);
  const s = noise / Math.sqrt(dim);
  for (let j = 0; j < dim; j++) v[j] = w * a[j]! + (1 - w) * b[j]! + s * gauss(r);
  return normalise(v);
}

interface Row {
  size: number;
  method: SearchMethod;
  /** candidates re-scored in float (int8, hnsw: the HNSW search list is at least this long) */
  rerank?: number;
  /** ivf: lists scanned per query, of `lists` */
  nprobe?: number;
  lists?: number;
  /** ivf: share of searches widened to four times the lists, and share answered by the full int8 scan */
  widened?: number;
  scanned?: number;
  queries: number;
  p50Ms: number;
  p99Ms: number;
  batch10P50Ms: number;
  batch10P99Ms: number;
  buildS: number;
  agreement: number;
  recall1: number;
  rssMb: number;
  nodeVersion: string;
}

function sameDecision(a: IdentifyResult, b: IdentifyResult): boolean {
  return a.identity === b.identity && a.reason === b.reason;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      sizes: { type: 'string', default: '10000,100000,1000000' },
      methods: { type: 'string', default: 'exact,int8,hnsw' },
      real: { type: 'string' },
      queries: { type: 'string' },
      // default: the identify threshold of the default model's calibration (the one decision policy)
      threshold: { type: 'string' },
      margin: { type: 'string', default: '0.03' },
      noise: { type: 'string', default: '0.3' },
      seed: { type: 'string', default: '14' },
      json: { type: 'boolean', default: false },
      'hnsw-rerank': { type: 'string', default: '64' },
      'ivf-nprobe': { type: 'string' },
      'ivf-lists': { type: 'string' },
    },
  });
  const sizes = values.sizes.split(',').map(Number);
  const methods = values.methods.split(',') as SearchMethod[];
  for (const m of methods) if (!['exact', 'int8', 'hnsw', 'ivf'].includes(m)) throw new Error(`--methods: unknown method ${m} (exact, int8, hnsw, ivf)`);
  if (methods.includes('hnsw') && methods.includes('ivf')) throw new Error('--methods: hnsw and ivf each build their own structure: benchmark them in separate runs');
  const ivfLists = values['ivf-lists'] === undefined ? undefined : Number(values['ivf-lists']);
  if (ivfLists !== undefined && !(Number.isInteger(ivfLists) && ivfLists >= 1)) throw new Error(`--ivf-lists: ${values['ivf-lists']} is not a positive integer`);
  // no --ivf-nprobe: the index's default (a sixteenth of the lists)
  const nprobes: (number | undefined)[] = values['ivf-nprobe'] === undefined ? [undefined] : values['ivf-nprobe'].split(',').map(Number);
  for (const p of nprobes) if (p !== undefined && !(Number.isInteger(p) && p >= 1)) throw new Error(`--ivf-nprobe: ${p} is not a positive integer`);
  for (const s of sizes) if (!(Number.isInteger(s) && s > 0)) throw new Error(`--sizes: ${s} is not a positive integer`);
  const threshold = values.threshold !== undefined ? Number(values.threshold) : decisionThreshold({ name: DEFAULT_MODEL }, 'identify').value;
  const margin = Number(values.margin);
  const r = rng(Number(values.seed));
  const real = values.real ? await loadReal(values.real) : syntheticReal(128, r);
  let queries = real.queries;
  if (values.queries) queries = queries.slice(0, Number(values.queries));
  log(`${real.enrolled.length} real identities enrolled, ${queries.length} real queries (${queries.filter((q) => q.expect).length} enrolled, ${queries.filter((q) => !q.expect).length} strangers)`);
  {
    // resemblance: query-to-distractor distances vs. query-to-other-real-person distances
    const d = (a: Float32Array, b: Float32Array): number => Math.sqrt(a.reduce((t, x, j) => t + (x - b[j]!) ** 2, 0));
    const sample = Array.from({ length: 2000 }, () => distractor(real.pool, real.dim, r, Number(values.noise)));
    const toD = queries.flatMap((q) => sample.slice(0, 200).map((s) => d(q.embedding, s))).sort((a, b) => a - b);
    const imp: number[] = [];
    for (const q of queries) for (const id of real.enrolled.slice(0, 200)) if (id.name !== q.expect) imp.push(d(q.embedding, id.embeddings[0]!));
    imp.sort((a, b) => a - b);
    const qs = (v: number[]): string => [0.001, 0.01, 0.5].map((p) => quantile(v, p).toFixed(3)).join(' / ');
    log(`distance p0.1 / p1 / p50: query to distractor ${qs(toD)}; query to another real person ${qs(imp)}`);
  }
  const rows: Row[] = [];
  for (const size of sizes) {
    const t0 = performance.now();
    const built: SearchMethod = methods.includes('hnsw') ? 'hnsw' : methods.includes('ivf') ? 'ivf' : 'int8';
    const g = new Gallery('bench', real.dim, { search: { method: built, ...(ivfLists ? { lists: ivfLists } : {}) } });
    for (const id of real.enrolled) g.add(id.name, id.embeddings);
    for (let i = g.size; i < size; i++) g.add(`d${i}`, [distractor(real.pool, real.dim, r, Number(values.noise))]);
    const enrolS = (performance.now() - t0) / 1000;
    // how near the distractors come: the nearest non-real identity of each query, exact
    const nearD = queries.map((q) => g.searchWith('exact', q.embedding, 3).find((h) => h.name.startsWith('d'))?.distance ?? 2).sort((a, b) => a - b);
    log(`size ${size}: enrolled in ${enrolS.toFixed(1)} s; nearest distractor to a query: p1 ${quantile(nearD, 0.01).toFixed(3)}, p50 ${quantile(nearD, 0.5).toFixed(3)} (threshold ${threshold})`);
    const extraBuildS: Partial<Record<SearchMethod, number>> = {};
    let reference: IdentifyResult[] = [];
    let referenceTop: string[] = [];
    type Run = { method: SearchMethod; rerank: number | undefined; nprobe?: number | undefined };
    const runs = methods.flatMap<Run>((m) =>
      m === 'hnsw' ? values['hnsw-rerank'].split(',').map((x) => ({ method: m, rerank: Number(x) })) : m === 'ivf' ? nprobes.map((p) => ({ method: m, rerank: 64, nprobe: p })) : [{ method: m, rerank: m === 'int8' ? 64 : undefined }],
    );
    for (const { method, rerank, nprobe } of runs) {
      const tb = performance.now();
      if (method === 'int8') g.searchWith('int8', queries[0]!.embedding, 2); // builds the int8 copy
      if (method === 'hnsw' || method === 'ivf') await g.whenSearchReady();
      if (method !== 'exact') extraBuildS[method] ??= (performance.now() - tb) / 1000; // built once, searched with each rerank
      const buildS = enrolS + (extraBuildS[method] ?? 0);
      // identify() hands its rule to the search: ivf widens where its decision is in doubt
      const searchable = { search: (q: Float32Array, k?: number, decision?: DecisionRule) => g.searchWith(method, q, k, { rerank, ...(nprobe ? { nprobe } : {}), ...(decision ? { decision } : {}) }) };
      const stats0 = g.ivfStats;
      const times: number[] = [];
      const decisions: IdentifyResult[] = [];
      for (const q of queries) {
        const s = performance.now();
        decisions.push(identify(q.embedding, searchable, { threshold, margin }));
        times.push(performance.now() - s);
      }
      const batches: number[] = [];
      for (let i = 0; i + 10 <= queries.length; i += 10) {
        const s = performance.now();
        for (let j = i; j < i + 10; j++) identify(queries[j]!.embedding, searchable, { threshold, margin });
        batches.push(performance.now() - s);
      }
      if (method === 'exact' || reference.length === 0) {
        if (method !== 'exact') log('no exact method in --methods: agreement is against the first method');
        reference = decisions;
        referenceTop = decisions.map((d) => d.nearest);
      }
      times.sort((a, b) => a - b);
      batches.sort((a, b) => a - b);
      const row: Row = {
        size,
        method,
        ...(rerank !== undefined ? { rerank } : {}),
        ...(method === 'ivf' ? { nprobe: nprobe ?? defaultNprobe(ivfLists ?? defaultIvfLists(g.embeddingCount)), lists: ivfLists ?? defaultIvfLists(g.embeddingCount) } : {}),
        queries: queries.length,
        p50Ms: +quantile(times, 0.5).toFixed(3),
        p99Ms: +quantile(times, 0.99).toFixed(3),
        batch10P50Ms: batches.length ? +quantile(batches, 0.5).toFixed(3) : NaN,
        batch10P99Ms: batches.length ? +quantile(batches, 0.99).toFixed(3) : NaN,
        buildS: +buildS.toFixed(1),
        agreement: decisions.filter((d, i) => sameDecision(d, reference[i]!)).length / decisions.length,
        recall1: decisions.filter((d, i) => d.nearest === referenceTop[i]).length / decisions.length,
        rssMb: Math.round(process.memoryUsage().rss / 2 ** 20),
        nodeVersion: process.version,
      };
      if (method === 'ivf') {
        const s = g.ivfStats;
        const q = s.queries - stats0.queries;
        row.widened = (s.widened - stats0.widened) / q;
        row.scanned = (s.scanned - stats0.scanned) / q;
      }
      const correct = decisions.filter((d, i) => d.identity === queries[i]!.expect).length / decisions.length;
      if (values.json) process.stdout.write(`${JSON.stringify(row)}\n`);
      else log(`${JSON.stringify(row)} (decision = ground truth on ${(correct * 100).toFixed(1)}%)`);
      rows.push(row);
    }
    g.close();
  }
  if (!values.json) {
    process.stdout.write('\n| size | method (re-ranked) | p50 ms | p99 ms | batch of 10 p50 / p99 ms | build s | agreement | recall@1 | RSS MB |\n|---|---|---|---|---|---|---|---|---|\n');
    for (const w of rows) process.stdout.write(`| ${w.size.toLocaleString('en')} | ${w.method}${w.nprobe ? ` (${w.nprobe} of ${w.lists} lists; widened ${((w.widened ?? 0) * 100).toFixed(1)}%, full scan ${((w.scanned ?? 0) * 100).toFixed(1)}%)` : w.rerank ? ` (${w.rerank})` : ''} | ${w.p50Ms} | ${w.p99Ms} | ${w.batch10P50Ms} / ${w.batch10P99Ms} | ${w.buildS} | ${(w.agreement * 100).toFixed(2)}% | ${(w.recall1 * 100).toFixed(2)}% | ${w.rssMb} |\n`);
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`bench:search: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(2);
});
