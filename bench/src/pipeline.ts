/**
 * `npm run bench:pipeline -- [options]`: the streaming pipeline on this machine, end to end through Kafka.
 * A benchmark, not a test: it asserts nothing, it measures and prints a markdown table.
 *
 * For each embedder count (`--embedders 1,2`): starts the four services (node services/<name>/dist/main.js)
 * against the local Kafka and Redis (`bash scripts/infra.sh up`; FACEFLOW_KAFKA_BROKERS / FACEFLOW_REDIS_URL),
 * on their own topics, groups and gallery prefix (deleted afterwards); N cameras push 720p JPEG frames to the
 * ingest service's HTTP push API at `--fps` each (frames made from @vladmandic/face-api's demo photo, three
 * faces, or from `--video`); after `--warmup` seconds it measures `--seconds` seconds:
 *  - frames/s end to end: frames the embedders finished (their faceflow_frames_out_total) per second of the
 *    window, next to the frames/s offered; when the pipeline keeps up they are equal, when it does not the
 *    consumer lag grows and the latency with it (both shown);
 *  - capture-to-match latency p50/p99 of every frame captured in the window (match messages read from the
 *    matches topic: now - captureTs), and capture-to-identity-event p50/p99 of every enter/update event
 *    read from the identity-events topic (now - endTs, the capture time of the frame that triggered it);
 *  - what the embedders did: full vs region detections, faces embedded vs followed, CPU cores used;
 *  - frames refused (429) or dropped by ingest.
 * The matcher's gallery is in Redis: `--redis-gallery` identities (default 1000; a list runs the pipeline once
 * per size, e.g. 1000,1000000 for the small and the million-person gallery side by side, issue 14) of random
 * unit vectors, seeded through the store's streamed import (gallery-seed.ts); the matcher loads it before it
 * is ready, and its CPU and RSS over the window are reported.
 * Then, separately, 1:N search latency of the engine's `Gallery.search` in this process at `--gallery-sizes`
 * entries (random unit vectors, dim 128, one embedding per identity; no Redis; "" skips it).
 *
 * Full run (what BENCHMARKS.md reports; needs the machine to itself, ~10 minutes):
 *   npm run build && bash scripts/infra.sh up && npm run bench:pipeline -- --cameras 4 --fps 5 --seconds 60
 * Smoke run: npm run bench:pipeline -- --cameras 1 --fps 2 --seconds 5 --warmup 3 --embedders 1 --gallery-sizes 10000
 */
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { Gallery } from '@faceflow/engine';
import { DEFAULT_FULL_DETECTION_EVERY_MS, DEFAULT_LATE_FRAME_MS, DEFAULT_REEMBED_EVERY_MS, LATE_REEMBED_FACTOR } from '@faceflow/embedder';
import { defineConfig, FaceSchema, kafkaConfigFields, kafkaConnectionOf, redisConfigFields, redisConnectionOf, type KafkaConnection, type RedisConnection, FrameSchema, IdentityEventSchema, MatchSchema, topicNames } from '@faceflow/shared';
import { KafkaBus } from '@faceflow/shared/kafka';
import { RedisGalleryStore } from '@faceflow/shared/redis';
import { seedGallery } from './gallery-seed.js';
import { metricsText, ready, ROOT, serviceMemory, startService, stopServices, sumMetric, type Service } from './spawn.js';

const run = promisify(execFile);
const SAMPLE = path.join(ROOT, 'node_modules/@vladmandic/face-api/demo/sample1.jpg');
const log = (msg: string): void => void process.stderr.write(`[bench:pipeline] ${msg}\n`);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function quantile(sorted: number[], q: number): number | undefined {
  if (sorted.length === 0) return undefined;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}

/** 720p JPEG frames: the demo photo (one frame), or up to `max` frames of a video. */
async function makeFrames(video: string | undefined, max: number, fps: number): Promise<Buffer[]> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'faceflow-bench-'));
  try {
    const vf = 'scale=1280:720:force_original_aspect_ratio=increase,crop=1280:720';
    if (video) {
      // sampled at the cameras' frame rate, so that a camera plays the video at its real speed (faces move
      // between frames as much as they would live)
      await run('ffmpeg', ['-y', '-loglevel', 'error', '-i', video, '-vf', `fps=${fps},${vf}`, '-frames:v', String(max), '-q:v', '3', path.join(dir, 'f%05d.jpg')], { timeout: 300_000 });
    } else {
      await run('ffmpeg', ['-y', '-loglevel', 'error', '-i', SAMPLE, '-vf', vf, '-q:v', '3', path.join(dir, 'f00001.jpg')]);
    }
    const files = (await readdir(dir)).filter((f) => f.endsWith('.jpg')).sort();
    if (files.length === 0) throw new Error(`no frames from ${video ?? SAMPLE}`);
    return Promise.all(files.map((f) => readFile(path.join(dir, f))));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

interface PipelineRow {
  embedders: number;
  /** identities in the matcher's Redis gallery */
  gallery: number;
  /** the matcher over the window: CPU cores used, RSS at its end and at its peak (MB) */
  matcher: { cpu: number; rssMb: number; peakRssMb: number };
  cameras: number;
  offeredFps: number;
  processedFps: number;
  /** Frames/s of each embedder: cameras are keyed to partitions, so with few cameras one may get them all. */
  perEmbedder: number[];
  matchP50?: number;
  matchP99?: number;
  eventP50?: number;
  eventP99?: number;
  /** enter/update events whose triggering frame was captured in the window */
  events: number;
  refused: number;
  dropped: number;
  lagAtEnd: number;
  framesInWindow: number;
  /** embedder counters over the window (all instances): detections by kind, faces embedded / followed, CPU seconds, batches */
  work: Record<string, number>;
  breakdown: Breakdown;
  /** the embedders' per-frame phases over the window (from their histogram: bucket bounds, not exact) */
  phases: { wait: PhaseStats; engine: PhaseStats };
  seconds: number;
}

interface PhaseStats {
  frames: number;
  /** the histogram bucket bound under which half / 99% of the frames fall */
  p50le: number | null;
  p99le: number | null;
  /** share of frames over 0.5 s */
  over500ms: number;
}

/** Seconds per segment of a frame's or an event's way: p50, p99, and the mean over the slowest 5%. */
interface SegmentStats {
  p50: number | null;
  p99: number | null;
  slowMean: number | null;
}

interface Breakdown {
  /** frames with all four stamps (frames without a face have no face message) */
  frames: number;
  ingest: SegmentStats;
  embedder: SegmentStats;
  matcher: SegmentStats;
  matchRead: SegmentStats;
  /** identity events whose triggering frame has all stamps */
  events: number;
  eventUpToMatch: SegmentStats;
  alerts: SegmentStats;
  eventRead: SegmentStats;
}

/**
 * Splits capture-to-match per frame and capture-to-event per event into segments by the Kafka producer
 * timestamps (the bench, the broker and the services share one clock here). "slowMean" is each segment's mean
 * over the 5% of frames (events) slowest end to end: where the tail's time goes.
 */
function latencyBreakdown(
  frames: Array<{ frameId: string; captureTs: number; at: number; matchTs: number; cameraId: string }>,
  events: Array<{ endTs: number; at: number; eventTs: number; cameraId: string }>,
  ingestTs: Map<string, number>,
  embedTs: Map<string, number>,
): Breakdown {
  const stats = (rows: number[][], k: number): SegmentStats => {
    if (rows.length === 0) return { p50: null, p99: null, slowMean: null };
    const v = rows.map((r) => r[k]!).sort((a, b) => a - b);
    const slow = [...rows].sort((a, b) => b[0]! - a[0]!).slice(0, Math.max(1, Math.ceil(rows.length * 0.05)));
    return { p50: quantile(v, 0.5)!, p99: quantile(v, 0.99)!, slowMean: slow.reduce((a, r) => a + r[k]!, 0) / slow.length };
  };
  const rows: number[][] = [];
  const byCamCapture = new Map<string, number[]>();
  for (const f of frames) {
    const ing = ingestTs.get(f.frameId), emb = embedTs.get(f.frameId);
    if (ing === undefined || emb === undefined) continue;
    const r = [(f.at - f.captureTs) / 1000, (ing - f.captureTs) / 1000, (emb - ing) / 1000, (f.matchTs - emb) / 1000, (f.at - f.matchTs) / 1000];
    rows.push(r);
    byCamCapture.set(`${f.cameraId}@${f.captureTs}`, [f.matchTs]);
  }
  const evRows: number[][] = [];
  for (const e of events) {
    const fr = byCamCapture.get(`${e.cameraId}@${e.endTs}`);
    if (!fr) continue;
    evRows.push([(e.at - e.endTs) / 1000, (fr[0]! - e.endTs) / 1000, (e.eventTs - fr[0]!) / 1000, (e.at - e.eventTs) / 1000]);
  }
  return {
    frames: rows.length,
    ingest: stats(rows, 1),
    embedder: stats(rows, 2),
    matcher: stats(rows, 3),
    matchRead: stats(rows, 4),
    events: evRows.length,
    eventUpToMatch: stats(evRows, 1),
    alerts: stats(evRows, 2),
    eventRead: stats(evRows, 3),
  };
}

async function pipelineRun(o: {
  embedders: number;
  gallery: number;
  cameras: number;
  fps: number;
  seconds: number;
  warmup: number;
  workers: number;
  partitions: number;
  frames: Buffer[];
  kafka: KafkaConnection;
  redis: RedisConnection;
  /** the embedder's engine settings (FACEFLOW_FULL_DETECTION_EVERY, FACEFLOW_MIN_FACE, FACEFLOW_EMBED_FLIP) */
  engineEnv: Record<string, string>;
}): Promise<PipelineRow> {
  const id = `${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
  const prefix = `bench-${id}`;
  const topics = topicNames(prefix);
  const extra = [`${topics.faces}.dlq`, `${topics.matches}.dlq`];
  const galleryPrefix = `bench:${id}:`;
  const groups = { embedder: `bench-embedder-${id}`, matcher: `bench-matcher-${id}`, alerts: `bench-alerts-${id}`, reader: `bench-reader-${id}`, eventReader: `bench-events-${id}`, stamps: `bench-stamps-${id}` };
  const bus = new KafkaBus({ ...o.kafka, clientId: 'faceflow-bench' });
  const services: Service[] = [];
  const cameras = Array.from({ length: o.cameras }, (_, i) => `cam${i + 1}`);
  const keys = new Map(cameras.map((c) => [c, randomBytes(16).toString('hex')]));
  try {
    await bus.createTopics([...Object.values(topics), ...extra].map((topic) => ({ topic, partitions: o.partitions })));
    // a gallery of random identities, so that every face is searched against something (1M: issue 14)
    const store = await RedisGalleryStore.open({ ...o.redis, keyPrefix: galleryPrefix });
    const seeded = await seedGallery(store, o.gallery);
    await store.close();
    log(`gallery of ${o.gallery} identities seeded in Redis in ${seeded.seconds.toFixed(1)} s`);

    const common = {
      FACEFLOW_KAFKA_BROKERS: o.kafka.brokers.join(','),
      FACEFLOW_REDIS_URL: o.redis.url,
      FACEFLOW_TOPIC_PREFIX: prefix,
      FACEFLOW_TOPIC_PARTITIONS: String(o.partitions),
    };
    const withInfo = { FACEFLOW_LOG_LEVEL: 'info' }; // the "ready" line (with the port) is an info line
    const embedders = Array.from({ length: o.embedders }, () =>
      startService('embedder', { ...common, ...withInfo, FACEFLOW_EMBEDDER_GROUP: groups.embedder, FACEFLOW_EMBEDDER_WORKERS: String(o.workers), ...o.engineEnv }),
    );
    const matcher = startService('matcher', { ...common, ...withInfo, FACEFLOW_MATCHER_GROUP: groups.matcher, FACEFLOW_GALLERY_PREFIX: galleryPrefix });
    const alerts = startService('alerts', { ...common, ...withInfo, FACEFLOW_ALERTS_GROUP: groups.alerts, FACEFLOW_ALERT_MIN_FACES: '1' });
    const ingest = startService('ingest', {
      ...common,
      ...withInfo,
      FACEFLOW_INGEST_API_KEYS: cameras.map((c) => `${c}:${createHash('sha256').update(keys.get(c)!).digest('hex')}`).join(','),
      FACEFLOW_INGEST_MAX_IN_FLIGHT: String(Math.max(64, o.cameras * 16)),
    });
    services.push(...embedders, matcher, alerts, ingest);
    log(`embedders=${o.embedders}: starting the services (the engine loads in each embedder)`);
    await Promise.all(services.map((s) => ready(s)));

    // every match: capture-to-match latency, counted per frame (a frame's first match)
    const seenFrames = new Map<string, { frameId: string; captureTs: number; at: number; matchTs: number; cameraId: string }>();
    const sub = await bus.subscribe(
      topics.matches,
      groups.reader,
      async (batch) => {
        const at = Date.now();
        for (const m of batch.messages) {
          const match = MatchSchema.decode(m.value);
          if (!seenFrames.has(match.frameId)) seenFrames.set(match.frameId, { frameId: match.frameId, captureTs: match.captureTs, at, matchTs: m.timestamp, cameraId: match.cameraId });
        }
      },
      { deadLetter: false },
    );
    // where a frame's time goes: the Kafka timestamps (producer time) of its frame message (ingest's send) and
    // of its first face message (the embedder's send); with the match's, they split capture-to-match into
    // ingest, embedder (Kafka hop, queues, engine) and matcher (Kafka hop, tracking, search)
    const ingestTs = new Map<string, number>();
    const embedTs = new Map<string, number>();
    const stampSubs = await Promise.all([
      bus.subscribe(
        topics.frames,
        groups.stamps + '-frames',
        async (batch) => {
          for (const m of batch.messages) {
            const { frameId } = FrameSchema.decode(m.value);
            if (!ingestTs.has(frameId)) ingestTs.set(frameId, m.timestamp);
          }
        },
        { deadLetter: false },
      ),
      bus.subscribe(
        topics.faces,
        groups.stamps + '-faces',
        async (batch) => {
          for (const m of batch.messages) {
            const face = FaceSchema.decode(m.value);
            if (!embedTs.has(face.frameId)) embedTs.set(face.frameId, m.timestamp);
          }
        },
        { deadLetter: false },
      ),
    ]);
    // every enter/update identity event, read as a downstream consumer reads it: arrival - the capture time
    // of the track's newest face (endTs), i.e. of the frame whose match triggered the event
    const eventLatencies: Array<{ endTs: number; at: number; eventTs: number; cameraId: string }> = [];
    const eventSub = await bus.subscribe(
      topics.identityEvents,
      groups.eventReader,
      async (batch) => {
        const at = Date.now();
        for (const m of batch.messages) {
          const e = IdentityEventSchema.decode(m.value);
          if (e.type !== 'exit') eventLatencies.push({ endTs: e.endTs, at, eventTs: m.timestamp, cameraId: e.cameraId });
        }
      },
      { deadLetter: false },
    );

    // the cameras: each pushes its frames at o.fps, on its own clock
    let pushing = true;
    let refused = 0;
    let pushed = 0;
    const pushers = cameras.map(async (cam, ci) => {
      const period = 1000 / o.fps;
      let next = Date.now() + (ci * period) / o.cameras;
      // each camera starts at its own point of the video, so the cameras do not show the same picture
      let n = Math.floor((ci * o.frames.length) / o.cameras);
      while (pushing) {
        const wait = next - Date.now();
        if (wait > 0) await sleep(wait);
        next += period;
        const frame = o.frames[n++ % o.frames.length]!;
        const captureTs = Date.now();
        try {
          const res = await fetch(`http://127.0.0.1:${ingest.port}/v1/frames`, {
            method: 'POST',
            headers: { authorization: `Bearer ${keys.get(cam)}`, 'x-camera-id': cam, 'x-capture-ts': String(captureTs), 'content-type': 'image/jpeg' },
            body: frame,
          });
          await res.arrayBuffer();
          if (res.status === 429) refused++;
          else if (!res.ok) throw new Error(`push: HTTP ${res.status}`);
          else pushed++;
        } catch (e) {
          refused++;
          if (refused < 5) log(`push failed: ${(e as Error).message}`);
        }
        if (Date.now() - next > 5 * period) next = Date.now(); // do not burst to catch up
      }
    });

    const embedderFrames = async (): Promise<number[]> =>
      (await Promise.all(embedders.map(metricsText))).map((t) => sumMetric(t, 'faceflow_frames_out_total', { stage: 'embedder' }));
    // what the embedders did in the window: detection kinds, faces embedded vs followed, their CPU
    const embedderWork = async (): Promise<Record<string, number>> => {
      const texts = await Promise.all(embedders.map(metricsText));
      const sum = (name: string, where: Record<string, string> = {}): number => texts.reduce((a, t) => a + sumMetric(t, name, where), 0);
      return {
        full: sum('faceflow_embedder_detections_total', { kind: 'full' }),
        region: sum('faceflow_embedder_detections_total', { kind: 'region' }),
        embedded: sum('faceflow_faces_total', { stage: 'embedder' }),
        followed: sum('faceflow_embedder_faces_followed_total'),
        late: sum('faceflow_embedder_late_frames_total'),
        cpu: sum('faceflow_process_cpu_seconds_total'),
        batches: sum('faceflow_embedder_batch_size_count'),
        batchFrames: sum('faceflow_embedder_batch_size_sum'),
      };
    };
    log(`warming up for ${o.warmup} s`);
    await sleep(o.warmup * 1000);
    const t0 = Date.now();
    const phaseBefore = await Promise.all(embedders.map(metricsText));
    const f0 = await embedderFrames();
    const w0 = await embedderWork();
    const m0 = sumMetric(await metricsText(matcher), 'faceflow_process_cpu_seconds_total');
    const ingestBefore = await metricsText(ingest);
    log(`measuring for ${o.seconds} s`);
    await sleep(o.seconds * 1000);
    const f1 = await embedderFrames();
    const w1 = await embedderWork();
    const m1 = sumMetric(await metricsText(matcher), 'faceflow_process_cpu_seconds_total');
    const t1 = Date.now();
    const matcherMem = await serviceMemory(matcher);
    const phaseAfter = await Promise.all(embedders.map(metricsText));
    const ingestAfter = await metricsText(ingest);
    const lagAtEnd = (await Promise.all(embedders.map(metricsText))).reduce((a, t) => Math.max(a, sumMetric(t, 'faceflow_consumer_lag_messages')), 0);
    pushing = false;
    await Promise.all(pushers);
    // let the frames captured in the window arrive (bounded)
    const inWindow = (): Array<{ frameId: string; captureTs: number; at: number; matchTs: number; cameraId: string }> => [...seenFrames.values()].filter((f) => f.captureTs >= t0 && f.captureTs < t1);
    const drainEnd = Date.now() + 30_000;
    let before = -1;
    while (Date.now() < drainEnd && inWindow().length !== before) {
      before = inWindow().length;
      await sleep(3_000);
    }
    const lat = inWindow()
      .map((f) => (f.at - f.captureTs) / 1000)
      .sort((a, b) => a - b);
    const eventLat = eventLatencies
      .filter((e) => e.endTs >= t0 && e.endTs < t1)
      .map((e) => (e.at - e.endTs) / 1000)
      .sort((a, b) => a - b);
    await sub.close({ graceMs: 1000 });
    await eventSub.close({ graceMs: 1000 });
    for (const st of stampSubs) await st.close({ graceMs: 1000 });
    const breakdown = latencyBreakdown(
      inWindow(),
      eventLatencies.filter((e) => e.endTs >= t0 && e.endTs < t1),
      ingestTs,
      embedTs,
    );
    const phase = (w: 'wait' | 'engine'): PhaseStats => {
      const buckets = (ts: string[]): Map<number, number> => {
        const out = new Map<number, number>();
        for (const t of ts) {
          for (const line of t.split('\n')) {
            const mm = /^faceflow_embedder_frame_phase_seconds_bucket\{(.*)\} (\S+)$/.exec(line);
            if (!mm || !mm[1]!.includes(`phase="${w}"`)) continue;
            const le = /le="([^"]+)"/.exec(mm[1]!)![1]!;
            const key = le === '+Inf' ? Infinity : Number(le);
            out.set(key, (out.get(key) ?? 0) + Number(mm[2]));
          }
        }
        return out;
      };
      const b0 = buckets(phaseBefore), b1 = buckets(phaseAfter);
      const les = [...b1.keys()].sort((a, b) => a - b);
      const counts = les.map((le) => (b1.get(le) ?? 0) - (b0.get(le) ?? 0));
      const total = counts[counts.length - 1] ?? 0;
      const q = (p: number): number | null => {
        if (total === 0) return null;
        const i = counts.findIndex((c) => c >= p * total);
        return les[i] ?? null;
      };
      const over = (x: number): number => (total === 0 ? 0 : 1 - (counts[les.indexOf(x)] ?? total) / total);
      return { frames: total, p50le: q(0.5), p99le: q(0.99), over500ms: over(0.5) };
    };
    const dropped =
      sumMetric(ingestAfter, 'faceflow_frames_dropped_total', { stage: 'ingest' }) - sumMetric(ingestBefore, 'faceflow_frames_dropped_total', { stage: 'ingest' });
    return {
      embedders: o.embedders,
      gallery: o.gallery,
      matcher: { cpu: (m1 - m0) / ((t1 - t0) / 1000), rssMb: matcherMem.rssBytes / 2 ** 20, peakRssMb: matcherMem.peakRssBytes / 2 ** 20 },
      cameras: o.cameras,
      offeredFps: o.cameras * o.fps,
      processedFps: f1.reduce((a, x, i) => a + x - f0[i]!, 0) / ((t1 - t0) / 1000),
      perEmbedder: f1.map((x, i) => (x - f0[i]!) / ((t1 - t0) / 1000)),
      matchP50: quantile(lat, 0.5),
      matchP99: quantile(lat, 0.99),
      eventP50: quantile(eventLat, 0.5),
      eventP99: quantile(eventLat, 0.99),
      events: eventLat.length,
      refused,
      dropped,
      lagAtEnd,
      framesInWindow: lat.length,
      work: Object.fromEntries(Object.keys(w1).map((k) => [k, w1[k]! - w0[k]!])),
      breakdown,
      phases: { wait: phase('wait'), engine: phase('engine') },
      seconds: (t1 - t0) / 1000,
    };
  } finally {
    await stopServices(services);
    await bus.deleteGroups(Object.values(groups)).catch(() => undefined);
    await bus.deleteTopics([...Object.values(topics), ...extra]).catch(() => undefined);
    await bus.close().catch(() => undefined);
    const store = await RedisGalleryStore.open({ ...o.redis, keyPrefix: galleryPrefix }).catch(() => undefined);
    await store?.drop().catch(() => undefined);
    await store?.close();
  }
}

function randomUnitF32(dim: number, out = new Float32Array(dim)): Float32Array {
  let s = 0;
  for (let i = 0; i < dim; i++) {
    // Box-Muller: uniform on the sphere
    const u = 1 - Math.random();
    const x = Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * Math.random());
    out[i] = x;
    s += x * x;
  }
  const n = Math.sqrt(s);
  for (let i = 0; i < dim; i++) out[i]! /= n;
  return out;
}

interface SearchRow {
  entries: number;
  queries: number;
  p50: number;
  p99: number;
  buildSeconds: number;
}

function searchBench(entries: number, dim = 128): SearchRow {
  const g = new Gallery('bench-random', dim);
  const t = process.hrtime.bigint();
  for (let i = 0; i < entries; i++) g.add(`id-${i}`, [randomUnitF32(dim)]);
  const q0 = randomUnitF32(dim);
  g.search(q0, 2); // builds the search matrix
  const buildSeconds = Number(process.hrtime.bigint() - t) / 1e9;
  const queries = entries >= 1_000_000 ? 30 : entries >= 100_000 ? 100 : 300;
  const times: number[] = [];
  for (let i = 0; i < queries; i++) {
    const q = randomUnitF32(dim);
    const s = process.hrtime.bigint();
    g.search(q, 2);
    times.push(Number(process.hrtime.bigint() - s) / 1e6);
  }
  times.sort((a, b) => a - b);
  return { entries, queries, p50: quantile(times, 0.5)!, p99: quantile(times, 0.99)!, buildSeconds };
}

const fmt = (x: number | null | undefined, d = 2): string => (x === undefined || x === null || !Number.isFinite(x) ? 'n/a' : x.toFixed(d));

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      cameras: { type: 'string', default: '4' },
      fps: { type: 'string', default: '5' },
      seconds: { type: 'string', default: '60' },
      warmup: { type: 'string', default: '15' },
      embedders: { type: 'string', default: '1,2' },
      workers: { type: 'string', default: String(os.availableParallelism()) },
      partitions: { type: 'string', default: '8' },
      video: { type: 'string' },
      'full-detection-every': { type: 'string', default: String(DEFAULT_FULL_DETECTION_EVERY_MS) },
      'reembed-every': { type: 'string', default: String(DEFAULT_REEMBED_EVERY_MS) },
      'late-frame': { type: 'string', default: String(DEFAULT_LATE_FRAME_MS) },
      'min-face': { type: 'string', default: '40' },
      flip: { type: 'string', default: 'true' },
      detector: { type: 'string' },
      'gallery-sizes': { type: 'string', default: '10000,100000,1000000' },
      'redis-gallery': { type: 'string', default: '1000' },
      'skip-pipeline': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(
      'npm run bench:pipeline -- [--cameras 4] [--fps 5 (per camera)] [--seconds 60] [--warmup 15] [--embedders 1,2]\n' +
        '  [--workers N (engine threads per embedder)] [--partitions 8] [--video FILE] [--redis-gallery 1000 (identities in Redis; a list runs each)]\n' +
        '  [--gallery-sizes 10000,100000,1000000 (in-process search only; "" skips)] [--skip-pipeline]\n' +
        '  [--full-detection-every 1000 (ms; 0 = every frame)] [--reembed-every 400 (ms; 0 = every frame)] [--late-frame 400 (ms; 0 = never shed)] [--min-face 40] [--flip true|false] [--detector blazeface|yunet]\n',
    );
    return;
  }
  const num = (s: string, what: string): number => {
    const n = Number(s);
    if (!Number.isFinite(n) || n <= 0) throw new Error(`--${what} must be a positive number`);
    return n;
  };
  const cameras = num(values.cameras, 'cameras');
  const fps = num(values.fps, 'fps');
  const seconds = num(values.seconds, 'seconds');
  const warmup = Number(values.warmup);
  const workers = num(values.workers, 'workers');
  const partitions = num(values.partitions, 'partitions');
  const embedderCounts = values.embedders.split(',').filter(Boolean).map((s) => num(s, 'embedders'));
  const sizes = values['gallery-sizes'].split(',').filter(Boolean).map((s) => num(s, 'gallery-sizes'));
  const redisGalleries = values['redis-gallery'].split(',').filter(Boolean).map((s) => num(s, 'redis-gallery'));

  const cpus = os.cpus();
  const machine = `${cpus[0]?.model.trim() ?? 'unknown CPU'}, ${os.availableParallelism()} cores, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, ${os.type()} ${os.release()}, Node ${process.version}, loadavg at start ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`;
  const out: string[] = [`## bench:pipeline (${new Date().toISOString()})`, '', `Machine: ${machine}`, ''];

  if (!values['skip-pipeline']) {
    const infra = defineConfig({ ...kafkaConfigFields, ...redisConfigFields }).load();
    const engineEnv = {
      FACEFLOW_FULL_DETECTION_EVERY: values['full-detection-every'],
      FACEFLOW_REEMBED_EVERY: values['reembed-every'],
      FACEFLOW_LATE_FRAME: values['late-frame'],
      FACEFLOW_MIN_FACE: values['min-face'],
      FACEFLOW_EMBED_FLIP: values.flip,
      ...(values.detector ? { FACEFLOW_DETECTOR: values.detector } : {}),
    };
    const frames = await makeFrames(values.video, Math.ceil(fps * (seconds + warmup)), fps);
    log(`${frames.length} frame(s) of 1280x720 from ${values.video ?? 'the demo photo (3 faces)'}, ${Math.round(frames[0]!.length / 1024)} KiB each`);
    const rows: PipelineRow[] = [];
    for (const gallery of redisGalleries) for (const embedders of embedderCounts) {
      rows.push(await pipelineRun({ embedders, gallery, cameras, fps, seconds, warmup, workers, partitions, frames, kafka: kafkaConnectionOf(infra), redis: redisConnectionOf(infra), engineEnv }));
    }
    out.push(
      `Pipeline: ${cameras} camera(s) x ${fps} fps of 720p JPEG (${values.video ? path.basename(values.video) : 'demo photo, 3 faces'}) pushed to ingest; ` +
        `${workers} engine worker(s) per embedder; ${partitions} partitions; warm-up ${warmup} s, window ${seconds} s; ` +
        `embedder: full detection every ${values['full-detection-every']} ms, faces re-embedded every ${values['reembed-every']} ms (0 = every frame; ${LATE_REEMBED_FACTOR}x that in a frame more than ${values['late-frame']} ms late, 0 = never), min face ${values['min-face']} px, flip ${values.flip}.`,
      '',
      '| gallery (Redis) | embedders | offered frames/s | processed frames/s | per embedder | capture→match p50 (s) | p99 (s) | capture→event p50 (s) | p99 (s) | events | refused (429) | dropped by ingest | lag at end | frames measured | matcher CPU (cores) | matcher RSS / peak (MB) |',
      '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|',
      ...rows.map(
        (r) =>
          `| ${r.gallery.toLocaleString('en-US')} | ${r.embedders} | ${fmt(r.offeredFps, 1)} | ${fmt(r.processedFps, 1)} | ${r.perEmbedder.map((x) => fmt(x, 1)).join(' / ')} | ${fmt(r.matchP50)} | ${fmt(r.matchP99)} | ${fmt(r.eventP50)} | ${fmt(r.eventP99)} | ${r.events} | ${r.refused} | ${r.dropped} | ${r.lagAtEnd} | ${r.framesInWindow} | ${fmt(r.matcher.cpu, 2)} | ${fmt(r.matcher.rssMb, 0)} / ${fmt(r.matcher.peakRssMb, 0)} |`,
      ),
      '',
      '| gallery | embedders | full detections | region detections | faces embedded | faces followed | late frames | mean batch (frames) | embedder CPU (cores) |',
      '|---|---|---|---|---|---|---|---|---|',
      ...rows.map(
        (r) =>
          `| ${r.gallery.toLocaleString('en-US')} | ${r.embedders} | ${r.work.full} | ${r.work.region} | ${r.work.embedded} | ${r.work.followed} | ${r.work.late} | ${fmt(r.work.batchFrames! / Math.max(1, r.work.batches!), 1)} | ${fmt(r.work.cpu! / r.seconds, 2)} |`,
      ),
      '',
      'capture→match: per frame (its first match, read from the matches topic); capture→event: per enter/update identity event read from the identity-events topic (arrival minus the capture time of the frame whose match triggered it).',
      '',
      'Where the time goes, by the Kafka producer timestamps (one clock): p50 / p99 / mean over the slowest 5% end to end, seconds.',
      '',
      '| gallery | embedders | frames | capture→ingest sent | →embedder sent | →matcher sent | →read | events | capture→match sent | →alerts sent | →read | embedder wait p50/p99 (le) | engine p50/p99 (le) | engine > 0.5 s |',
      '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|',
      ...rows.map((r) => {
        const b = r.breakdown;
        const seg = (x: SegmentStats): string => `${fmt(x.p50)} / ${fmt(x.p99)} / ${fmt(x.slowMean)}`;
        const ph = (x: PhaseStats): string => `${x.p50le ?? '-'} / ${x.p99le ?? '-'}`;
        return `| ${r.gallery.toLocaleString('en-US')} | ${r.embedders} | ${b.frames} | ${seg(b.ingest)} | ${seg(b.embedder)} | ${seg(b.matcher)} | ${seg(b.matchRead)} | ${b.events} | ${seg(b.eventUpToMatch)} | ${seg(b.alerts)} | ${seg(b.eventRead)} | ${ph(r.phases.wait)} | ${ph(r.phases.engine)} | ${fmt(r.phases.engine.over500ms * 100, 1)}% |`;
      }),
      '',
    );
  }

  if (sizes.length) {
    const rows: SearchRow[] = [];
    for (const n of sizes) {
      log(`gallery search at ${n} entries`);
      rows.push(searchBench(n));
    }
    out.push(
      '1:N search, engine `Gallery.search` (k=2), random unit vectors, dim 128, one embedding per identity, one thread:',
      '',
      '| entries | queries | p50 (ms) | p99 (ms) | build (s) |',
      '|---|---|---|---|---|',
      ...rows.map((r) => `| ${r.entries.toLocaleString('en-US')} | ${r.queries} | ${fmt(r.p50, 3)} | ${fmt(r.p99, 3)} | ${fmt(r.buildSeconds, 1)} |`),
      '',
    );
  }
  process.stdout.write(`${out.join('\n')}\n`);
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    process.stderr.write(`bench:pipeline failed: ${e instanceof Error ? e.stack ?? e.message : String(e)}\n`);
    process.exit(1);
  },
);
