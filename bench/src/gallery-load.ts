/**
 * `npm run bench:gallery-load -- [--size 1000000] [--methods auto,ivf] [--sealed]`: a large gallery in Redis
 * loaded by the matcher service (issue 14). A benchmark: it asserts nothing, it prints a markdown table (and
 * with --json one JSON line per method).
 *
 * Seeds `--size` identities into a gallery of its own (gallery-seed.ts: the store's streamed import; with
 * --sealed under a fresh key, the records sealed as an encrypted gallery's), then for each search method
 * starts the matcher (spawn.ts, as the pipeline bench does, on topics of its own) over it and measures:
 *  - time to ready (spawn to its "matcher ready" line; the gallery is loaded before it) and the load itself
 *    (the matcher's "gallery loaded" line minus its first log line),
 *  - the matcher's peak RSS (VmHWM in /proc/<pid>/status) and RSS once ready, its CPU seconds,
 *  - Redis memory (INFO memory used_memory, and MEMORY USAGE of the identities hash),
 *  - one enrolment and one delete made while the gallery is held: the time from the write to the matcher
 *    serving it (its faceflow_gallery_version gauge reaching the change's version), and whether it was
 *    applied on its own (no second "gallery loaded": a full reload would log one).
 * The gallery and the topics are deleted afterwards (UNLINK: freed in Redis's background).
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { defineConfig, GALLERY_KEY_ENV, GalleryKey, kafkaConfigFields, kafkaConnectionOf, redisConfigFields, redisConnectionOf, topicNames, type KafkaConnection, type RedisConnection } from '@faceflow/shared';
import { KafkaBus } from '@faceflow/shared/kafka';
import { RedisGalleryStore } from '@faceflow/shared/redis';
import { seedGallery, seededIdentities } from './gallery-seed.js';
import { metricsText, ready, serviceMemory, startService, stopServices, sumMetric, type Service } from './spawn.js';

const log = (msg: string): void => void process.stderr.write(`[bench:gallery-load] ${msg}\n`);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const mb = (bytes: number): number => bytes / 2 ** 20;

interface LoadRow {
  size: number;
  method: string;
  sealed: boolean;
  readySeconds: number;
  loadSeconds: number;
  peakRssMb: number;
  readyRssMb: number;
  cpuSeconds: number;
  enrolMs: number;
  deleteMs: number;
  reloads: number;
  identities: number;
  /** the snapshot replies the load came in, and the largest (identities) */
  batches: number;
  largestBatch: number;
}

/** The ms from `write` (which resolves with the change's version) to the matcher's gallery version reaching it. */
async function timeToServe(matcher: Service, write: () => Promise<number>): Promise<number> {
  const t = process.hrtime.bigint();
  const version = await write();
  const end = Date.now() + 60_000;
  while (sumMetric(await metricsText(matcher), 'faceflow_gallery_version') < version) {
    if (Date.now() > end) throw new Error(`the matcher did not reach gallery version ${version} in 60 s`);
    await sleep(2);
  }
  return Number(process.hrtime.bigint() - t) / 1e6;
}

async function loadRun(o: { method: string; size: number; sealed: boolean; key: GalleryKey | undefined; keyFile: string | undefined; galleryPrefix: string; kafka: KafkaConnection; redis: RedisConnection }): Promise<LoadRow> {
  const id = `${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
  const topicPrefix = `bench-gload-${id}`;
  const topics = topicNames(topicPrefix);
  const kafka = o.kafka;
  const bus = new KafkaBus({ ...kafka, clientId: 'faceflow-bench' });
  const writer = await RedisGalleryStore.open({ ...o.redis, keyPrefix: o.galleryPrefix, ...(o.key ? { key: o.key } : {}) });
  let matcher: Service | undefined;
  try {
    const t0 = Date.now();
    matcher = startService('matcher', {
      FACEFLOW_KAFKA_BROKERS: kafka.brokers.join(','),
      FACEFLOW_REDIS_URL: o.redis.url,
      FACEFLOW_TOPIC_PREFIX: topicPrefix,
      FACEFLOW_MATCHER_GROUP: `bench-gload-${id}`,
      FACEFLOW_GALLERY_PREFIX: o.galleryPrefix,
      FACEFLOW_SEARCH_METHOD: o.method,
      FACEFLOW_LOG_LEVEL: 'info',
      ...(o.keyFile ? { [GALLERY_KEY_ENV]: o.keyFile } : {}),
    });
    await ready(matcher, 600_000);
    const readySeconds = (Date.now() - t0) / 1000;
    const readyRss = (await serviceMemory(matcher)).rssBytes;
    // the load as the matcher logs it (else: from its first log line, by the logger's ts)
    const first = matcher.lines[0]?.ts;
    const loaded = matcher.lines.find((l) => l.msg === 'gallery loaded');
    const loadSeconds = typeof loaded?.ms === 'number' ? loaded.ms / 1000 : loaded && first !== undefined ? (Date.parse(String(loaded.ts)) - Date.parse(String(first))) / 1000 : NaN;
    const loadsBefore = matcher.lines.filter((l) => l.msg === 'gallery loaded').length;
    // one new person enrolled and one seeded person deleted while the gallery is held
    const [newcomer] = [...seededIdentities(1, { seed: 99 })][0]!;
    const enrolMs = await timeToServe(matcher, async () => (await writer.put('bench-newcomer', newcomer!.embeddings)).version);
    const deleteMs = await timeToServe(matcher, async () => (await writer.delete('seed-7'))!.version);
    const reloads = matcher.lines.filter((l) => l.msg === 'gallery loaded').length - loadsBefore;
    const text = await metricsText(matcher);
    const row: LoadRow = {
      size: o.size,
      method: o.method,
      sealed: o.sealed,
      readySeconds,
      loadSeconds,
      peakRssMb: mb((await serviceMemory(matcher)).peakRssBytes),
      readyRssMb: mb(readyRss),
      cpuSeconds: sumMetric(text, 'faceflow_process_cpu_seconds_total'),
      enrolMs,
      deleteMs,
      reloads,
      identities: sumMetric(text, 'faceflow_gallery_identities'),
      batches: Number(loaded?.batches ?? NaN),
      largestBatch: Number(loaded?.largestBatch ?? NaN),
    };
    // put the gallery back as it was seeded, for the next method
    await writer.delete('bench-newcomer');
    await writer.put('seed-7', [...seededIdentities(8, { seed: 14 })][0]![7]!.embeddings);
    return row;
  } finally {
    if (matcher) await stopServices([matcher]);
    await bus.deleteGroups([`bench-gload-${id}`]).catch(() => undefined);
    await bus.deleteTopics([topics.faces, topics.matches, `${topics.faces}.dlq`, topics.audit]).catch(() => undefined);
    await bus.close().catch(() => undefined);
    await writer.close();
  }
}


const fmt = (x: number, d = 1): string => (Number.isFinite(x) ? x.toFixed(d) : 'n/a');

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      size: { type: 'string', default: '1000000' },
      methods: { type: 'string', default: 'auto,ivf' },
      sealed: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write('npm run bench:gallery-load -- [--size 1000000] [--methods auto,ivf] [--sealed] [--json]\n');
    return;
  }
  const size = Number(values.size);
  if (!Number.isSafeInteger(size) || size < 10) throw new Error('--size must be an integer >= 10');
  const methods = values.methods.split(',').filter(Boolean);
  const infra = defineConfig({ ...kafkaConfigFields, ...redisConfigFields }).load();
  const kafka = kafkaConnectionOf(infra);
  const redis = redisConnectionOf(infra);
  const galleryPrefix = `bench:gload-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}:`;
  let key: GalleryKey | undefined;
  let keyFile: string | undefined;
  if (values.sealed) {
    const generated = GalleryKey.generate();
    key = generated.key;
    keyFile = join(await mkdtemp(join(tmpdir(), 'faceflow-gload-')), 'gallery.key');
    await writeFile(keyFile, generated.text, { mode: 0o600 });
  }
  const store = await RedisGalleryStore.open({ ...redis, keyPrefix: galleryPrefix, ...(key ? { key } : {}) });
  const rows: LoadRow[] = [];
  let seed: { seconds: number; redisBefore: number; redisAfter: number; peak: number; hash: number } | undefined;
  try {
    const before = await store.memory();
    log(`seeding ${size} identities under ${galleryPrefix}${values.sealed ? ' (sealed)' : ''}`);
    const s = await seedGallery(store, size);
    const after = await store.memory();
    seed = { seconds: s.seconds, redisBefore: before.usedBytes, redisAfter: after.usedBytes, peak: after.peakBytes, hash: after.identitiesBytes };
    log(`seeded in ${s.seconds.toFixed(1)} s; Redis used_memory ${mb(before.usedBytes).toFixed(0)} -> ${mb(after.usedBytes).toFixed(0)} MB`);
    for (const method of methods) {
      log(`matcher with FACEFLOW_SEARCH_METHOD=${method}`);
      rows.push(await loadRun({ method, size, sealed: values.sealed, key, keyFile, galleryPrefix, kafka, redis }));
      if (values.json) process.stdout.write(`${JSON.stringify({ ...rows[rows.length - 1], seedSeconds: seed.seconds, redisUsedMb: mb(seed.redisAfter), redisGalleryMb: mb(seed.redisAfter - seed.redisBefore) })}\n`);
    }
  } finally {
    await store.drop().catch(() => undefined);
    await store.close();
    if (keyFile) await rm(dirname(keyFile), { recursive: true, force: true });
  }
  if (values.json) return;
  const out = [
    `Seeded ${size.toLocaleString('en-US')} identities${values.sealed ? ' (sealed)' : ''} in ${fmt(seed!.seconds)} s; Redis used_memory ${fmt(mb(seed!.redisBefore), 0)} -> ${fmt(mb(seed!.redisAfter), 0)} MB (identities hash ${fmt(mb(seed!.hash), 0)} MB, peak ${fmt(mb(seed!.peak), 0)} MB).`,
    '',
    '| identities | method | time to ready s | load s | peak RSS MB | RSS ready MB | CPU s | enrol applied ms | delete applied ms | full reloads | identities held | replies (largest) |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|',
    ...rows.map((r) => `| ${r.size.toLocaleString('en-US')} | ${r.method} | ${fmt(r.readySeconds)} | ${fmt(r.loadSeconds)} | ${fmt(r.peakRssMb, 0)} | ${fmt(r.readyRssMb, 0)} | ${fmt(r.cpuSeconds)} | ${fmt(r.enrolMs)} | ${fmt(r.deleteMs)} | ${r.reloads} | ${r.identities} | ${r.batches} (${r.largestBatch}) |`),
  ];
  process.stdout.write(`${out.join('\n')}\n`);
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    process.stderr.write(`bench:gallery-load failed: ${e instanceof Error ? e.stack ?? e.message : String(e)}\n`);
    process.exit(1);
  },
);
