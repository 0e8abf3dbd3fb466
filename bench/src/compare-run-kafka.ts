/**
 * `node bench/dist/compare-run-kafka.js <video> <reference folder> [faceflow run flags...]`:
 * the check of issue 3's first "done when": on a real clip with enrolled people in it, `faceflow run` (one
 * process) and the four services over the real Kafka and Redis must name the same people. A check, not a
 * test: it prints a comparison and exits 0 when both modes name the same set of identities, 1 when they do
 * not, 2 on a usage error, 3 when a mode could not be run.
 *
 *  1. Enrolls the references into a gallery file as scripts/demo.sh does: one identity per image
 *     (`00NN_name.png` -> `name`) or `enroll --dir` for one sub-folder per person. An image in which the
 *     detector finds no face (a tight crop) is enrolled with `--whole-image` instead (the image is the face),
 *     and said so; `--skip-undetected` skips it, exactly as demo.sh does.
 *  2. Runs `faceflow run --json` on the clip with the given flags; event offsets are its own
 *     (startOffsetMs/endOffsetMs: capture time minus the first frame's, on the video's clock).
 *  3. Runs ingest, embedder, matcher and alerts (node services/<name>/dist/main.js) against the local Kafka and
 *     Redis (`bash scripts/infra.sh up` unless FACEFLOW_INFRA=0), on their own topic prefix, consumer groups
 *     and Redis key prefix (deleted afterwards); seeds the Redis gallery from the same gallery file; the ingest
 *     service pulls the clip itself (FACEFLOW_INGEST_SOURCES=<camera>=<video>, same frame-rate cap and camera
 *     id). Its capture clock starts at the wall time ingest opened the file (one ffmpeg source, stamped
 *     start + frame index / fps, as in `faceflow run`), so Kafka offsets are capture time minus the capture
 *     time of the first frame on the frames topic (read with kcat). Identity events are read from the
 *     identity-events topic (KafkaBus, own group). Done when ingest has sent the whole clip, the embedder has
 *     finished every frame, every announced track has its exit, and nothing new came for a while.
 *  4. Prints, per identity, the time stretches (seconds from the first frame) of its tracks in each mode, the
 *     identities named in one mode only, and the named tracks of one mode that the other mode names
 *     differently (a track of the other mode overlapping in time, named someone else, and no track of the
 *     same identity overlapping). Identity events carry no face position, so with two people in view such a
 *     pair can be two faces, both named right: it is a lead to check by eye, not a verdict (the exit code
 *     depends only on the sets of identities).
 *
 * The flags are `faceflow run`'s. Each one is given to `faceflow run` as it is and to the services as the
 * environment variable that means the same (table FLAGS below); a flag the services have no equivalent for
 * is refused. The embedder's settings (frame rate, full detection, re-embedding, minimum face, flip, workers,
 * batch) are always passed explicitly to both modes, defaults included, so they cannot drift apart.
 *
 * Own options (anywhere on the line): --work-dir DIR (gallery.json, run-events.jsonl, kafka-events.jsonl and
 * kafka-matches.jsonl: every face's match with its track and box, to see which face a named track followed;
 * default a new folder under the OS temp dir, kept), --skip-undetected, --only run|kafka (one mode; no comparison),
 * --timeout S (per mode, default 3600), --alert-idle DURATION (the alerts service's FACEFLOW_ALERT_IDLE,
 * default 10s, the deploy value: the wall time after which a silent camera's tracks end; `faceflow run` ends
 * them at the end of the file instead).
 *
 * Example (issue 3): npm run build && node bench/dist/compare-run-kafka.js \
 *   ../shared/data/video/sitcom/Video_2.mp4 ../shared/data/video/sitcom/database --fps 5 --backend wasm
 */
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { DEFAULT_FULL_DETECTION_EVERY_MS, DEFAULT_REEMBED_EVERY_MS } from '@faceflow/embedder';
import { defineConfig, IdentityEventSchema, kafkaConfigFields, kafkaConnectionOf, redisConfigFields, redisConnectionOf, MatchSchema, parseGalleryFile, topicNames, type IdentityEvent, type Match } from '@faceflow/shared';
import { KafkaBus } from '@faceflow/shared/kafka';
import { RedisGalleryStore } from '@faceflow/shared/redis';
import { ready, ROOT, startService, stopServices, sumMetric, type Service, type ServiceName } from './spawn.js';

const execP = promisify(execFile);
const CLI = path.join(ROOT, 'packages/cli/dist/main.js');
const log = (msg: string): void => void process.stderr.write(`[compare-run-kafka] ${msg}\n`);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

class UsageError extends Error {}

// ------------------------------------------------------------------------------------------------ flags

/** A `faceflow run` flag and what it is for the services: env variables per service. */
interface FlagSpec {
  boolean?: boolean;
  /** service -> env var -> value (from the flag's value; for a boolean flag, the value when it is given) */
  env: (value: string) => Partial<Record<ServiceName, Record<string, string>>>;
  /** also given to `faceflow enroll` */
  enroll?: boolean;
}

const FLAGS: Record<string, FlagSpec> = {
  fps: { env: (v) => ({ ingest: { FACEFLOW_INGEST_FPS: v } }) },
  camera: { env: () => ({}) }, // the camera id of FACEFLOW_INGEST_SOURCES, see below
  backend: { env: (v) => ({ embedder: { FACEFLOW_BACKEND: v } }), enroll: true },
  workers: { env: (v) => ({ embedder: { FACEFLOW_EMBEDDER_WORKERS: v } }) },
  'min-face': { env: (v) => ({ embedder: { FACEFLOW_MIN_FACE: v } }) },
  'no-flip': { boolean: true, env: () => ({ embedder: { FACEFLOW_EMBED_FLIP: 'false' } }) },
  head: { env: (v) => ({ embedder: { FACEFLOW_HEAD: v }, matcher: { FACEFLOW_HEAD: v } }), enroll: true },
  'full-detection-every': { env: (v) => ({ embedder: { FACEFLOW_FULL_DETECTION_EVERY: v } }) },
  'reembed-every': { env: (v) => ({ embedder: { FACEFLOW_REEMBED_EVERY: v } }) },
  'max-batch': { env: (v) => ({ embedder: { FACEFLOW_EMBEDDER_MAX_BATCH: v } }) },
  'max-wait': { env: (v) => ({ embedder: { FACEFLOW_EMBEDDER_MAX_WAIT: v } }) },
  threshold: { env: (v) => ({ matcher: { FACEFLOW_MATCH_THRESHOLD: v } }) },
  margin: { env: (v) => ({ matcher: { FACEFLOW_MATCH_MARGIN: v } }) },
  'quality-floor': { env: (v) => ({ matcher: { FACEFLOW_MATCH_QUALITY_FLOOR: v } }) },
  'track-timeout': { env: (v) => ({ matcher: { FACEFLOW_TRACK_TIMEOUT: v }, alerts: { FACEFLOW_TRACK_TIMEOUT: v } }) },
  'min-faces': { env: (v) => ({ alerts: { FACEFLOW_ALERT_MIN_FACES: v } }) },
  cooldown: { env: (v) => ({ alerts: { FACEFLOW_ALERT_COOLDOWN: v } }) },
  watch: { env: (v) => ({ alerts: { FACEFLOW_ALERT_WATCH: v } }) },
  'no-unknown': { boolean: true, env: () => ({ alerts: { FACEFLOW_ALERT_UNKNOWN: 'false' } }) },
  'min-confidence': { env: (v) => ({ alerts: { FACEFLOW_ALERT_MIN_CONFIDENCE: v } }) },
  'no-redact': { boolean: true, env: () => ({}) }, // FACEFLOW_REDACT_EXEMPT_CAMERAS=<camera>, see below
  grace: { env: () => ({}) }, // faceflow run only: at the end of a file everything is processed anyway
};
/** `faceflow run` flags the services cannot be given: refused, so that the modes never differ silently. */
const REFUSED: Record<string, string> = {
  'min-score': 'the embedder service has no detector-score setting',
  embedder: 'the embedder service has no model setting (it uses the default embedder, or FACEFLOW_HEAD)',
  registry: 'the embedder service has no registry setting',
  crops: 'not compared (the services would need FACEFLOW_CROP_DIR)',
  'metrics-port': 'not needed here',
  'whole-image': 'not a run setting',
  source: 'the video is the first argument',
  gallery: 'the gallery is enrolled from the reference folder',
  json: 'always on',
};

interface Options {
  video: string;
  refs: string;
  /** flag -> value ('' for a boolean flag), in the order given */
  runFlags: Map<string, string>;
  workDir?: string;
  skipUndetected: boolean;
  only?: 'run' | 'kafka';
  timeoutMs: number;
  alertIdle: string;
}

function parseCommandLine(argv: string[]): Options {
  const positionals: string[] = [];
  const runFlags = new Map<string, string>();
  let workDir: string | undefined;
  let skipUndetected = false;
  let only: 'run' | 'kafka' | undefined;
  let timeoutMs = 3_600_000;
  let alertIdle = '10s';
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith('--')) {
      positionals.push(a);
      continue;
    }
    const eq = a.indexOf('=');
    const name = a.slice(2, eq > 0 ? eq : undefined);
    const value = (): string => {
      if (eq > 0) return a.slice(eq + 1);
      const v = argv[++i];
      if (v === undefined) throw new UsageError(`--${name} needs a value`);
      return v;
    };
    if (name === 'work-dir') workDir = value();
    else if (name === 'skip-undetected') skipUndetected = true;
    else if (name === 'only') {
      const v = value();
      if (v !== 'run' && v !== 'kafka') throw new UsageError('--only must be run or kafka');
      only = v;
    } else if (name === 'timeout') {
      const s = Number(value());
      if (!(s > 0)) throw new UsageError('--timeout must be a positive number of seconds');
      timeoutMs = s * 1000;
    } else if (name === 'alert-idle') alertIdle = value();
    else if (REFUSED[name] !== undefined) throw new UsageError(`--${name}: ${REFUSED[name]}`);
    else if (FLAGS[name] !== undefined) runFlags.set(name, FLAGS[name]!.boolean ? '' : value());
    else throw new UsageError(`unknown flag --${name} (faceflow run flags: ${Object.keys(FLAGS).map((f) => `--${f}`).join(' ')})`);
  }
  if (positionals.length !== 2) throw new UsageError(`expected <video> <reference folder>, got ${positionals.length} argument(s)`);
  const [video, refs] = positionals as [string, string];
  if (!existsSync(video) || !statSync(video).isFile()) throw new UsageError(`video not found: ${video}`);
  if (!existsSync(refs) || !statSync(refs).isDirectory()) throw new UsageError(`reference folder not found: ${refs}`);
  return { video: path.resolve(video), refs: path.resolve(refs), runFlags, ...(workDir ? { workDir } : {}), skipUndetected, ...(only ? { only } : {}), timeoutMs, alertIdle };
}

/**
 * The embedder settings, explicit in both modes (defaults included): `faceflow run`'s defaults for a video
 * and the embedder service's are the same constants today; passing them both ways keeps it so.
 */
function withExplicitDefaults(flags: Map<string, string>): Map<string, string> {
  const f = new Map(flags);
  const put = (k: string, v: string): void => void (f.has(k) || f.set(k, v));
  put('fps', '5');
  put('camera', 'cam1');
  put('full-detection-every', String(DEFAULT_FULL_DETECTION_EVERY_MS));
  put('reembed-every', String(DEFAULT_REEMBED_EVERY_MS));
  put('min-face', '40');
  put('workers', String(os.availableParallelism()));
  put('max-batch', '8');
  put('max-wait', '20');
  return f;
}

function runArgs(flags: Map<string, string>): string[] {
  return [...flags].flatMap(([k, v]) => (FLAGS[k]!.boolean ? [`--${k}`] : [`--${k}`, v]));
}

function serviceEnv(flags: Map<string, string>, video: string): Record<ServiceName, Record<string, string>> {
  const env: Record<ServiceName, Record<string, string>> = { ingest: {}, embedder: {}, matcher: {}, alerts: {} };
  for (const [k, v] of flags) {
    for (const [s, vars] of Object.entries(FLAGS[k]!.env(v))) Object.assign(env[s as ServiceName], vars);
  }
  const camera = flags.get('camera')!;
  env.ingest.FACEFLOW_INGEST_SOURCES = `${camera}=${video}`;
  if (!flags.has('no-flip')) env.embedder.FACEFLOW_EMBED_FLIP = 'true';
  if (flags.has('no-redact')) env.embedder.FACEFLOW_REDACT_EXEMPT_CAMERAS = env.alerts.FACEFLOW_REDACT_EXEMPT_CAMERAS = camera;
  return env;
}

// ------------------------------------------------------------------------------------------------ enroll

interface Enrolled {
  gallery: string;
  detected: string[];
  wholeImage: string[];
  skipped: string[];
}

async function cli(args: string[]): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
    child.on('close', (code) => resolve({ code: code ?? 1, stderr }));
  });
}

async function enroll(o: Options, flags: Map<string, string>, workDir: string): Promise<Enrolled> {
  const gallery = path.join(workDir, 'gallery.json');
  await rm(gallery, { force: true }); // a fresh gallery each time
  const engineArgs = [...flags].filter(([k]) => FLAGS[k]!.enroll).flatMap(([k, v]) => [`--${k}`, v]);
  const entries = await readdir(o.refs, { withFileTypes: true });
  const result: Enrolled = { gallery, detected: [], wholeImage: [], skipped: [] };
  if (entries.some((e) => e.isDirectory())) {
    const r = await cli(['enroll', '--gallery', gallery, '--dir', o.refs, ...engineArgs]);
    if (r.code !== 0) throw new Error(`faceflow enroll --dir ${o.refs} failed: ${r.stderr.trim()}`);
    result.detected.push(...entries.filter((e) => e.isDirectory()).map((e) => e.name));
    return result;
  }
  const images = entries
    .filter((e) => e.isFile() && /\.(png|jpe?g|webp)$/i.test(e.name))
    .map((e) => e.name)
    .sort();
  for (const file of images) {
    const base = file.replace(/\.[^.]+$/, '');
    const name = base.includes('_') ? base.slice(base.indexOf('_') + 1) : base; // 0008_jessica -> jessica
    const full = path.join(o.refs, file);
    const r = await cli(['enroll', '--gallery', gallery, '--name', name, full, ...engineArgs]);
    if (r.code === 0) {
      result.detected.push(name);
      continue;
    }
    const noFace = /NO_FACE|no face/i.test(r.stderr);
    if (noFace && !o.skipUndetected) {
      const w = await cli(['enroll', '--gallery', gallery, '--name', name, '--whole-image', full, ...engineArgs]);
      if (w.code === 0) {
        result.wholeImage.push(name);
        continue;
      }
      log(`skipped ${file}: ${w.stderr.trim().split('\n').pop()}`);
    } else {
      log(`skipped ${file}: ${r.stderr.trim().split('\n').pop()}`);
    }
    result.skipped.push(name);
  }
  if (result.detected.length + result.wholeImage.length === 0) throw new Error(`no identity could be enrolled from ${o.refs}`);
  return result;
}

// ------------------------------------------------------------------------------------------------ modes

/** An identity event with its offsets (ms) from the first frame of the clip. */
interface TimedEvent extends IdentityEvent {
  startOffsetMs: number;
  endOffsetMs: number;
}

interface ModeResult {
  events: TimedEvent[];
  /** Kafka mode: every match (one per face, with its track and box) read from the matches topic, for checking by eye */
  matches?: Array<Omit<Match, 'candidates'> & { offsetMs: number }>;
  frames: number;
  wallS: number;
  notes: string[];
}

async function runMode(o: Options, flags: Map<string, string>, gallery: string): Promise<ModeResult> {
  const args = [CLI, 'run', '--source', o.video, '--gallery', gallery, '--json', ...runArgs(flags)];
  log(`faceflow run: node ${path.relative(ROOT, CLI)} ${args.slice(1).join(' ')}`);
  const t0 = Date.now();
  const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString('utf8')));
  child.stderr.on('data', (d: Buffer) => {
    err += d.toString('utf8');
    if (err.length > 1_000_000) err = err.slice(-100_000);
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), o.timeoutMs);
  const code = await new Promise<number | null>((r) => child.on('close', r));
  clearTimeout(timer);
  if (code !== 0) throw new Error(`faceflow run exited with ${code}: ${err.trim().split('\n').slice(-5).join(' | ')}`);
  const events = out
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as TimedEvent);
  const summaryLine = err.split('\n').reverse().find((l) => l.startsWith('faceflow run: {'));
  const summary = summaryLine ? (JSON.parse(summaryLine.slice('faceflow run: '.length)) as { frames?: number; threshold?: number; thresholdSource?: string }) : {};
  return {
    events,
    frames: summary.frames ?? 0,
    wallS: (Date.now() - t0) / 1000,
    notes: [`threshold ${summary.threshold} (${summary.thresholdSource})`],
  };
}

/** The header of the first message on the frames topic (kcat, an external client): its frame id and capture time. */
async function firstFrame(broker: string, topic: string): Promise<{ frameId: string; captureTs: number }> {
  const { stdout } = await execP('kcat', ['-b', broker, '-C', '-t', topic, '-o', 'beginning', '-c', '1', '-e', '-q', '-f', '%s'], {
    encoding: 'buffer',
    timeout: 30_000,
    maxBuffer: 64 * 1024 * 1024,
  });
  const buf = stdout as Buffer;
  if (buf.length < 9 || buf.toString('ascii', 0, 4) !== 'FFRM') throw new Error(`the first message on ${topic} is not a faceflow frame`);
  const n = buf.readUInt32BE(5);
  return JSON.parse(buf.toString('utf8', 9, 9 + n)) as { frameId: string; captureTs: number };
}

async function kafkaMode(o: Options, flags: Map<string, string>, gallery: string): Promise<ModeResult> {
  if (process.env.FACEFLOW_INFRA !== '0') {
    log('bash scripts/infra.sh up');
    const { stdout } = await execP('bash', [path.join(ROOT, 'scripts/infra.sh'), 'up'], { cwd: ROOT, timeout: 600_000 });
    for (const m of stdout.matchAll(/^export (\w+)=(.*)$/gm)) process.env[m[1]!] = m[2]!;
  }
  const infra = defineConfig({ ...kafkaConfigFields, ...redisConfigFields }).load();
  const brokers = [...infra.kafkaBrokers];
  const id = `${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
  const prefix = `compare-${id}`;
  const topics = topicNames(prefix);
  const extra = [`${topics.faces}.dlq`, `${topics.matches}.dlq`];
  const galleryPrefix = `compare:${id}:`;
  const groups = {
    embedder: `compare-embedder-${id}`,
    matcher: `compare-matcher-${id}`,
    alerts: `compare-alerts-${id}`,
    reader: `compare-events-${id}`,
    matchReader: `compare-matches-${id}`,
  };
  const env = serviceEnv(flags, o.video);
  const common = {
    FACEFLOW_KAFKA_BROKERS: brokers.join(','),
    FACEFLOW_REDIS_URL: infra.redisUrl,
    FACEFLOW_TOPIC_PREFIX: prefix,
    FACEFLOW_TOPIC_PARTITIONS: '2',
  };
  const bus = new KafkaBus({ ...kafkaConnectionOf(infra), clientId: 'faceflow-compare' });
  const services: Service[] = [];
  const onSignal = (): void => void stopServices(services).finally(() => process.exit(130));
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const t0 = Date.now();
  try {
    await bus.createTopics([...Object.values(topics), ...extra].map((topic) => ({ topic, partitions: 2 })));
    // the Redis gallery, from the same file `faceflow run` reads
    const file = parseGalleryFile(await readFile(gallery, 'utf8'), gallery);
    const store = await RedisGalleryStore.open({ ...redisConnectionOf(infra), keyPrefix: galleryPrefix });
    for (const i of file.identities) await store.put(i.id, i.embeddings, { metadata: { ...(file.model ? { model: file.model } : {}), ...i.metadata } });
    await store.close();

    const events: IdentityEvent[] = [];
    let lastEventAt = Date.now();
    const sub = await bus.subscribe(
      topics.identityEvents,
      groups.reader,
      async (batch) => {
        for (const m of batch.messages) events.push(IdentityEventSchema.decode(m.value));
        lastEventAt = Date.now();
      },
      { deadLetter: false },
    );
    // every face's match (track, box, per-frame identity): which face a named track followed, to check by eye
    const matches: Match[] = [];
    const matchSub = await bus.subscribe(
      topics.matches,
      groups.matchReader,
      async (batch) => {
        for (const m of batch.messages) matches.push(MatchSchema.decode(m.value));
      },
      { deadLetter: false },
    );

    log(`services on topic prefix ${prefix}, Redis prefix ${galleryPrefix}`);
    for (const s of ['embedder', 'matcher', 'alerts'] as const) log(`${s}: ${Object.entries(env[s]).map(([k, v]) => `${k}=${v}`).join(' ')}`);
    const embedder = startService('embedder', { ...common, FACEFLOW_EMBEDDER_GROUP: groups.embedder, ...env.embedder });
    const matcher = startService('matcher', { ...common, FACEFLOW_MATCHER_GROUP: groups.matcher, FACEFLOW_GALLERY_PREFIX: galleryPrefix, ...env.matcher });
    const alerts = startService('alerts', { ...common, FACEFLOW_ALERTS_GROUP: groups.alerts, FACEFLOW_ALERT_IDLE: o.alertIdle, ...env.alerts });
    services.push(embedder, matcher, alerts);
    await Promise.all(services.map((s) => ready(s)));
    log(`ingest: ${Object.entries(env.ingest).map(([k, v]) => `${k}=${v}`).join(' ')}`);
    const ingest = startService('ingest', { ...common, ...env.ingest });
    services.push(ingest);
    await ready(ingest);

    const deadline = Date.now() + o.timeoutMs;
    const idleMs = parseDurationMs(o.alertIdle);
    let sent: number | undefined;
    let embedderDoneAt: number | undefined;
    let first: { frameId: string; captureTs: number } | undefined;
    let lastProgress = 0;
    for (;;) {
      if (Date.now() > deadline) throw new Error(`the Kafka pipeline did not finish within ${o.timeoutMs / 1000} s`);
      for (const s of services) if (s.child.exitCode !== null && s !== ingest) throw new Error(`${s.name} exited with ${s.child.exitCode}:\n${s.logs.slice(-20).join('\n')}`);
      if (sent === undefined) {
        const ended = ingest.lines.find((l) => l.msg === 'source ended');
        if (ended) {
          sent = Number(ended.sent);
          log(`ingest sent ${sent} frames (${JSON.stringify(ended.dropped ?? {})} dropped)`);
        }
        const failed = ingest.lines.find((l) => l.msg === 'source failed');
        if (failed) throw new Error(`ingest: source failed: ${String(failed.error)}`);
      }
      if (first === undefined) first = await firstFrame(brokers[0]!, topics.frames).catch(() => undefined);
      const m = await (await fetch(`http://127.0.0.1:${embedder.port}/metrics`)).text();
      const done = sumMetric(m, 'faceflow_frames_out_total', { stage: 'embedder' }) + sumMetric(m, 'faceflow_frames_dropped_total', { stage: 'embedder' });
      if (Date.now() - lastProgress > 15_000) {
        lastProgress = Date.now();
        log(`embedder: ${done}${sent !== undefined ? ` of ${sent}` : ''} frames, ${events.length} identity events so far`);
      }
      if (sent !== undefined && done >= sent && embedderDoneAt === undefined) embedderDoneAt = Date.now();
      if (embedderDoneAt !== undefined) {
        const open = openTracks(events);
        // the matcher and alerts catch up, then alerts' sweep ends the last tracks after idleMs of silence
        if (open === 0 && Date.now() - embedderDoneAt > idleMs + 5_000 && Date.now() - lastEventAt > 3_000) break;
      }
      await sleep(1_000);
    }
    await sub.close({ graceMs: 1000 });
    await matchSub.close({ graceMs: 1000 });
    if (!first) throw new Error('could not read the first frame of the frames topic');
    const dlq = await Promise.all([topics.framesDlq, ...extra].map(async (t) => ({ t, n: await countMessages(brokers[0]!, t) })));
    const notes = [`first frame ${first.frameId} captured at ${new Date(first.captureTs).toISOString()}`];
    for (const d of dlq) if (d.n > 0) notes.push(`${d.n} message(s) on ${d.t}`);
    const matcherReady = matcher.lines.find((l) => l.msg === 'matcher ready');
    if (matcherReady) notes.push(`matcher: ${JSON.stringify(Object.fromEntries(Object.entries(matcherReady).filter(([k]) => /threshold|model|identities|margin|qualityFloor/i.test(k))))}`);
    return {
      events: events.map((e) => ({ ...e, startOffsetMs: e.startTs - first!.captureTs, endOffsetMs: e.endTs - first!.captureTs })),
      matches: matches
        .map(({ candidates: _c, ...m }) => ({ ...m, offsetMs: m.captureTs - first!.captureTs }))
        .sort((a, b) => a.offsetMs - b.offsetMs || a.faceIndex - b.faceIndex),
      frames: sent ?? 0,
      wallS: (Date.now() - t0) / 1000,
      notes,
    };
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await stopServices(services);
    await bus.deleteGroups(Object.values(groups)).catch(() => undefined);
    await bus.deleteTopics([...Object.values(topics), ...extra]).catch(() => undefined);
    await bus.close().catch(() => undefined);
    const store = await RedisGalleryStore.open({ ...redisConnectionOf(infra), keyPrefix: galleryPrefix }).catch(() => undefined);
    await store?.drop().catch(() => undefined);
    await store?.close();
  }
}

function parseDurationMs(raw: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h)?$/.exec(raw.trim());
  if (!m) throw new UsageError('--alert-idle must be a duration like 500ms, 10s, 1m');
  return Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[(m[2] ?? 'ms') as 'ms' | 's' | 'm' | 'h'];
}

async function countMessages(broker: string, topic: string): Promise<number> {
  const { stdout } = await execP('kcat', ['-b', broker, '-C', '-t', topic, '-o', 'beginning', '-e', '-q', '-f', '%o\\n'], { timeout: 30_000 }).catch(() => ({ stdout: '' }));
  return stdout.split('\n').filter(Boolean).length;
}

/** Tracks announced (enter) that have no exit yet. */
function openTracks(events: IdentityEvent[]): number {
  const open = new Set<string>();
  for (const e of events) {
    if (e.type === 'enter') open.add(e.trackId);
    else if (e.type === 'exit') open.delete(e.trackId);
  }
  return open.size;
}

// ------------------------------------------------------------------------------------------------ compare

interface Track {
  trackId: string;
  /** identities its events named, in order (null: unknown) */
  identities: Array<string | null>;
  startMs: number;
  endMs: number;
  exited: boolean;
}

function tracksOf(events: TimedEvent[]): Track[] {
  const byId = new Map<string, Track>();
  for (const e of events) {
    let t = byId.get(e.trackId);
    if (!t) {
      t = { trackId: e.trackId, identities: [], startMs: e.startOffsetMs, endMs: e.endOffsetMs, exited: false };
      byId.set(e.trackId, t);
    }
    if (!t.identities.includes(e.identity)) t.identities.push(e.identity);
    t.startMs = Math.min(t.startMs, e.startOffsetMs);
    t.endMs = Math.max(t.endMs, e.endOffsetMs);
    if (e.type === 'exit') t.exited = true;
  }
  return [...byId.values()].sort((a, b) => a.startMs - b.startMs);
}

const secs = (ms: number): string => (ms / 1000).toFixed(1);
const stretch = (t: Track): string => `${secs(t.startMs)}-${secs(t.endMs)}${t.identities.length > 1 ? ` (${t.identities.map((i) => i ?? 'unknown').join('->')})` : ''}${t.exited ? '' : ' (no exit)'}`;
const overlaps = (a: Track, b: Track): boolean => a.startMs <= b.endMs && b.startMs <= a.endMs;
const named = (t: Track): string[] => t.identities.filter((i): i is string => i !== null);

interface Comparison {
  lines: string[];
  same: boolean;
}

function compare(run: ModeResult, kafka: ModeResult): Comparison {
  const modes = { run: tracksOf(run.events), kafka: tracksOf(kafka.events) };
  const ids = (tracks: Track[]): Set<string> => new Set(tracks.flatMap(named));
  const runIds = ids(modes.run);
  const kafkaIds = ids(modes.kafka);
  const all = [...new Set([...runIds, ...kafkaIds])].sort((a, b) => {
    const first = (id: string): number => Math.min(...[...modes.run, ...modes.kafka].filter((t) => named(t).includes(id)).map((t) => t.startMs));
    return first(a) - first(b);
  });
  const lines: string[] = [];
  lines.push('| identity | faceflow run (s from the first frame) | Kafka pipeline (s from the first frame) |', '|---|---|---|');
  for (const id of all) {
    const col = (tracks: Track[]): string => tracks.filter((t) => named(t).includes(id)).map(stretch).join(', ') || '-';
    lines.push(`| ${id} | ${col(modes.run)} | ${col(modes.kafka)} |`);
  }
  const unknownCol = (tracks: Track[]): string => {
    const u = tracks.filter((t) => named(t).length === 0);
    return u.length ? `${u.length} track(s): ${u.map(stretch).join(', ')}` : '-';
  };
  lines.push(`| (unknown) | ${unknownCol(modes.run)} | ${unknownCol(modes.kafka)} |`, '');
  const runOnly = [...runIds].filter((i) => !kafkaIds.has(i));
  const kafkaOnly = [...kafkaIds].filter((i) => !runIds.has(i));
  lines.push(`named by faceflow run only: ${runOnly.join(', ') || 'none'}`);
  lines.push(`named by the Kafka pipeline only: ${kafkaOnly.join(', ') || 'none'}`);

  // per named track: does the other mode name the same person at that time?
  const differ: string[] = [];
  const oneSided: string[] = [];
  for (const [mode, other, otherName] of [
    ['faceflow run', modes.kafka, 'Kafka'],
    ['Kafka', modes.run, 'faceflow run'],
  ] as const) {
    for (const t of mode === 'faceflow run' ? modes.run : modes.kafka) {
      for (const id of named(t)) {
        const over = other.filter((o) => overlaps(t, o));
        if (over.some((o) => named(o).includes(id))) continue;
        const others = [...new Set(over.flatMap(named))];
        if (others.length) differ.push(`${mode} names ${id} at ${stretch(t)}; ${otherName} names ${others.join(', ')} there and not ${id}`);
        else oneSided.push(`${mode} names ${id} at ${stretch(t)}; ${otherName}: ${over.length ? `unknown (${over.map(stretch).join(', ')})` : 'no track'}`);
      }
    }
  }
  lines.push(`named tracks the other mode names differently at overlapping times (may be two faces in view: check by eye): ${differ.length ? '' : 'none'}`);
  for (const d of differ) lines.push(`  - ${d}`);
  lines.push(`named tracks the other mode does not name at that time: ${oneSided.length ? '' : 'none'}`);
  for (const d of oneSided) lines.push(`  - ${d}`);
  const same = runOnly.length === 0 && kafkaOnly.length === 0;
  lines.push(`same set of identities: ${same ? 'yes' : 'no'} (${[...runIds].sort().join(', ') || 'none'} vs ${[...kafkaIds].sort().join(', ') || 'none'})`);
  return { lines, same };
}

function countTypes(events: IdentityEvent[]): string {
  const c = { enter: 0, update: 0, exit: 0 };
  for (const e of events) c[e.type]++;
  return `enter ${c.enter}, update ${c.update}, exit ${c.exit}`;
}

// ------------------------------------------------------------------------------------------------ main

async function main(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(
      'usage: node bench/dist/compare-run-kafka.js <video> <reference folder> [faceflow run flags...]\n' +
        '  [--work-dir DIR] [--skip-undetected] [--only run|kafka] [--timeout S] [--alert-idle 10s]\n' +
        `  run flags passed to both modes: ${Object.keys(FLAGS).map((f) => `--${f}`).join(' ')}\n`,
    );
    return 0;
  }
  let o: Options;
  try {
    o = parseCommandLine(argv);
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`compare-run-kafka: ${e.message}\n`);
      return 2;
    }
    throw e;
  }
  const flags = withExplicitDefaults(o.runFlags);
  const workDir = o.workDir ? path.resolve(o.workDir) : await mkdtemp(path.join(os.tmpdir(), 'faceflow-compare-'));
  await mkdir(workDir, { recursive: true });
  log(`work folder ${workDir}`);

  const enrolled = await enroll(o, flags, workDir);
  const out: string[] = [];
  out.push(
    `clip ${path.basename(o.video)}; camera ${flags.get('camera')}; flags to both modes: ${runArgs(flags).join(' ')}`,
    `gallery: ${enrolled.detected.length + enrolled.wholeImage.length} identities from ${path.basename(o.refs)} ` +
      `(detected: ${enrolled.detected.join(', ') || 'none'}; enrolled with --whole-image, no face detected: ${enrolled.wholeImage.join(', ') || 'none'}; ` +
      `skipped: ${enrolled.skipped.join(', ') || 'none'})`,
  );

  const results: Partial<Record<'run' | 'kafka', ModeResult>> = {};
  for (const mode of ['run', 'kafka'] as const) {
    if (o.only && o.only !== mode) continue;
    try {
      const r = mode === 'run' ? await runMode(o, flags, enrolled.gallery) : await kafkaMode(o, flags, enrolled.gallery);
      results[mode] = r;
      await writeFile(path.join(workDir, `${mode}-events.jsonl`), r.events.map((e) => JSON.stringify(e)).join('\n') + '\n');
      if (r.matches) await writeFile(path.join(workDir, `${mode}-matches.jsonl`), r.matches.map((m) => JSON.stringify(m)).join('\n') + '\n');
      out.push(`${mode === 'run' ? 'faceflow run' : 'Kafka pipeline'}: ${r.frames} frames in ${r.wallS.toFixed(0)} s wall; events ${countTypes(r.events)}; ${r.notes.join('; ')}`);
    } catch (e) {
      process.stderr.write(`compare-run-kafka: ${mode}: ${e instanceof Error ? e.message : String(e)}\n`);
      process.stdout.write(`${out.join('\n')}\n`);
      return 3;
    }
  }
  if (!results.run || !results.kafka) {
    const only = (results.run ?? results.kafka)!;
    const t = tracksOf(only.events);
    out.push('', ...t.map((x) => `${(named(x).join('->') || 'unknown').padEnd(12)} ${stretch(x)}`));
    process.stdout.write(`${out.join('\n')}\n`);
    return 0;
  }
  const c = compare(results.run, results.kafka);
  out.push('', ...c.lines);
  process.stdout.write(`${out.join('\n')}\n`);
  return c.same ? 0 : 1;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`compare-run-kafka failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exit(3);
  },
);
