/**
 * `faceflow run`: the whole pipeline in one process. The same four stages as the services (ingest ->
 * embedder -> matcher -> alerts), wired with the InProcessBus instead of Kafka and a MemoryGalleryStore
 * loaded from the gallery file instead of Redis, so the one-process mode cannot drift from the distributed
 * one. Identity events are printed as they come: readable lines, or JSON lines with --json.
 *
 * The stages are the services' own, made by their `createStage` from their own config fields: run's flags
 * for the services' settings are generated from those fields (names, parsers, defaults, help), so there is
 * one definition of each (issue 13 step 4). The composition of the four lives here, the one place that
 * depends on all four services (a service never imports another); the running of it, with explicit states
 * and a two-phase shutdown (stop intake, drain within --grace, end the open tracks, close every resource even
 * if another's close throws; a second signal forces), is `@faceflow/shared/pipeline`.
 */
import { readFile } from 'node:fs/promises';
import { stat } from 'node:fs/promises';
import { decisionThreshold, decodeImage, EnginePool } from '@faceflow/engine';
import { assertGalleryModel, FALLBACK_THRESHOLD, galleryReadError } from '@faceflow/engine/match';
import { alertsConfig, createStage as createAlertsStage } from '@faceflow/alerts';
import { createStage as createEmbedderStage, embedderConfig } from '@faceflow/embedder';
import { createStage as createIngestStage, ffmpegSource, folderSource, imageContentType, imageFileSource, ingestConfig, isStreamUrl, probeVideo, type FrameSource, type IngestStage } from '@faceflow/ingest';
import { createStage as createMatcherStage, GalleryCache, matcherConfig } from '@faceflow/matcher';
import {
  closeAll,
  DirCropStore,
  FaceflowError,
  IdentityEventSchema,
  InProcessBus,
  kafkaConfigFields,
  redisConfigFields,
  MemoryGalleryStore,
  parseGalleryFile,
  topicNames,
  type Closer,
  type ConfigField,
  type GallerySnapshot,
  type IdentityEvent,
  type Stage,
} from '@faceflow/shared';
import { createLogger, createMetrics, startOpsServer, type OpsServer } from '@faceflow/shared/ops';
import { Pipeline } from '@faceflow/shared/pipeline';
import { type CommandSpec, num, str, UsageError } from '../cli.js';
import { configFlags, flagEnv, flagHelp, flagOptions, loadWithFlags } from '../config-flags.js';
import { galleryKeyOption } from '../gallery-key.js';
import { ENGINE_FLAGS, ENGINE_HELP, engineConfig, precheckGalleryHead, printThresholdWarning } from '../engine-setup.js';

const ingestFields = ingestConfig.fields;
const embedderFields = embedderConfig.fields;
const matcherFields = matcherConfig.fields;
const alertsFields = alertsConfig.fields;

/**
 * The services' settings that `faceflow run` takes as flags: the services' own config fields (one definition
 * each: flag name, parser, range, default and doc come from there; issue 13 step 4). FACEFLOW_TRACK_TIMEOUT
 * is one field read by the matcher and alerts, so one flag.
 */
export const RUN_CONFIG_FLAGS = configFlags([
  ingestFields.fps,
  matcherFields.margin,
  matcherFields.qualityFloor,
  alertsFields.minFaces,
  matcherFields.trackTimeoutMs,
  alertsFields.cooldownMs,
  alertsFields.watch,
  alertsFields.unknown,
  alertsFields.minConfidence,
  embedderFields.maxBatch,
  embedderFields.maxWaitMs,
  embedderFields.fullDetectionEveryMs,
  embedderFields.reembedEveryMs,
] as ConfigField<unknown>[]);

/**
 * Every other field of the four configs, and why it is not a `faceflow run` flag (a field a service gains
 * must be put in RUN_CONFIG_FLAGS or here: test/pipeline/run-flags.test.ts). Fields not flags keep their
 * defaults in `faceflow run` (they still reach createStage through the loaded configs).
 */
const TRANSPORT_NOT_FLAGS: Readonly<Record<string, string>> = Object.fromEntries(
  [...Object.keys(kafkaConfigFields), ...Object.keys(redisConfigFields)].map((k) => [k, 'service transport (run has no Kafka or Redis)']),
);

export const NOT_RUN_FLAGS: Readonly<Record<'ingest' | 'embedder' | 'matcher' | 'alerts', Readonly<Record<string, string>>>> = {
  ingest: {
    ...TRANSPORT_NOT_FLAGS,
    kafkaBrokers: 'service transport', redisUrl: 'service transport', topicPrefix: 'one process, no shared topics', logLevel: 'run logs warnings only',
    httpPort: 'run: --metrics-port', httpHost: 'run serves on 127.0.0.1', partitions: 'service transport', graceMs: 'run: --grace, which drains a whole pipeline',
    sources: 'run: --source, one camera', apiKeys: 'the push API is the service\'s', maxBytes: 'the push API is the service\'s', maxPixels: 'the push API is the service\'s',
    pushTimeoutMs: 'the push API is the service\'s', maxInFlight: 'the push API is the service\'s', sourceRetryMaxMs: 'run fails on a source error, it does not retry',
    maxWidth: 'run decodes frames at their size', maxQueue: 'default kept (live sources)', maxAgeMs: 'default kept (live sources)',
  },
  embedder: {
    ...TRANSPORT_NOT_FLAGS,
    kafkaBrokers: 'service transport', redisUrl: 'service transport', topicPrefix: 'one process', logLevel: 'run logs warnings only', httpPort: 'run: --metrics-port',
    httpHost: 'run serves on 127.0.0.1', partitions: 'service transport', graceMs: 'run: --grace', groupId: 'service transport',
    workers: 'the engine flags: --workers', backend: 'the engine flags: --backend', minFaceSize: 'the engine flags: --min-face', flip: 'the engine flags: --no-flip',
    detector: 'the engine flags: --detector', head: 'the engine flags: --head', cropDir: 'run: --crops', mask: 'default kept', redactExemptCameras: 'run: --no-redact, for its one camera',
    galleryKey: 'run: --gallery-key-file (the gallery file)', galleryPrefix: 'run reads a gallery file, not Redis', apiKeys: 'enrolment by photo is the service\'s HTTP API',
  },
  matcher: {
    ...TRANSPORT_NOT_FLAGS,
    kafkaBrokers: 'service transport', redisUrl: 'service transport', topicPrefix: 'one process', logLevel: 'run logs warnings only', httpPort: 'run: --metrics-port',
    httpHost: 'run serves on 127.0.0.1', partitions: 'service transport', graceMs: 'run: --grace', groupId: 'service transport',
    galleryKey: 'run: --gallery-key-file (the gallery file)', model: 'run: the engine flags (--embedder, --head)',
    head: 'the engine flags: --head', threshold: 'run: --threshold (the decision policy)', galleryPrefix: 'run reads a gallery file, not Redis',
    galleryRefreshMs: 'run reads a gallery file, not Redis', searchMethod: 'default kept', searchApprox: 'default kept', searchApproxRows: 'default kept',
    apiKeys: 'the gallery API is the service\'s',
  },
  alerts: {
    ...TRANSPORT_NOT_FLAGS,
    kafkaBrokers: 'service transport', redisUrl: 'service transport', topicPrefix: 'one process', logLevel: 'run logs warnings only', httpPort: 'run: --metrics-port',
    httpHost: 'run serves on 127.0.0.1', partitions: 'service transport', graceMs: 'run: --grace', groupId: 'service transport',
    cameras: 'run has one camera: --camera', idleMs: 'run: from the source (a file ends its tracks itself)', cropDir: 'run: --crops',
    cropRetention: 'run: --keep-all-crops', redactExemptCameras: 'run: --no-redact, for its one camera',
    galleryPrefix: 'run reads a gallery file, not Redis',
  },
};

/** The four services' configurations as `faceflow run` runs them: the fields' defaults, and the flags given. */
export function runConfigs(values: Readonly<Record<string, unknown>>) {
  const env = flagEnv(RUN_CONFIG_FLAGS, values);
  return loadWithFlags(RUN_CONFIG_FLAGS, () => ({
    ingest: ingestConfig.load(env),
    embedder: embedderConfig.load(env),
    matcher: matcherConfig.load(env),
    alerts: alertsConfig.load(env),
  }));
}

/** Reads a gallery file (the one format: `faceflow enroll` and FileGalleryStore both write it). */
export async function loadGallerySnapshot(file: string): Promise<{ snapshot: GallerySnapshot; model?: string }> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw galleryReadError(file, e);
  }
  const { model, dim: _dim, ...snapshot } = parseGalleryFile(text, file, galleryKeyOption().key);
  return { snapshot, ...(model !== undefined ? { model } : {}) };
}

async function isFolder(source: string): Promise<boolean> {
  if (isStreamUrl(source)) return false;
  return stat(source).then(
    (s) => s.isDirectory(),
    () => false,
  );
}

function clock(ms: number): string {
  const s = Math.max(0, ms) / 1000;
  const m = Math.floor(s / 60);
  return `${String(m).padStart(2, '0')}:${(s - m * 60).toFixed(1).padStart(4, '0')}`;
}

/**
 * Checks a source before the engine starts (not found, a folder with no images, a broken image, not a
 * video, no ffmpeg) and returns how to open it. ffmpeg itself is started only once the pipeline reads its
 * output: Node drops what a child process wrote to a pipe nobody was reading when the child exits, so a
 * short video decoded while the models load would give no frame at all.
 */
async function prepareSource(source: string, cameraId: string, fps: number | undefined, onError: (m: string) => void): Promise<() => Promise<FrameSource>> {
  if (isStreamUrl(source)) return () => ffmpegSource({ source, cameraId, fps: fps ?? 5, onError });
  let s;
  try {
    s = await stat(source);
  } catch (e) {
    throw new FaceflowError('NOT_FOUND', `source not found: ${source}`, { cause: e });
  }
  if (s.isDirectory()) {
    const folder = await folderSource({ dir: source, cameraId, fps: fps ?? 5 });
    return async () => folder;
  }
  if (imageContentType(source) !== undefined) {
    // one image: a broken one is the command's error (as in detect), not a frame dead-lettered in passing
    await decodeImage(source);
    const image = await imageFileSource({ file: source, cameraId });
    return async () => image;
  }
  await probeVideo(source);
  return () => ffmpegSource({ source, cameraId, fps: fps ?? 5, onError });
}

export const runPipeline: CommandSpec = {
  name: 'run',
  summary: 'the whole pipeline in one process: a video file, stream or image folder in, identity events out',
  usage: 'faceflow run --source <video file | rtsp/http url | image folder> --gallery <file> [--json] [--metrics-port N] [--fps N] [--camera ID]',
  flags: {
    ...ENGINE_FLAGS,
    ...flagOptions(RUN_CONFIG_FLAGS),
    source: { type: 'string' },
    gallery: { type: 'string' },
    'metrics-port': { type: 'string' },
    camera: { type: 'string' },
    threshold: { type: 'string' },
    crops: { type: 'string' },
    'keep-all-crops': { type: 'boolean', default: false },
    'no-redact': { type: 'boolean', default: false },
    grace: { type: 'string' },
  },
  help: [
    '  --source S         a video file, an rtsp:// or http(s):// stream (through ffmpeg), a folder of images or one image',
    '  --gallery FILE     the gallery (faceflow enroll writes one)',
    '  --camera ID        camera id of the source (default "cam1")',
    '  --metrics-port N   serve /metrics, /healthz and /readyz on this port while running',
    '  --threshold T      L2 distance under which a track is named (default: the model\'s calibrated distance at',
    '                     FAR 1e-3; with --head, the head\'s own, measured on its validation identities)',
    // the services' settings, from their config fields (the same defaults; the variable is named)
    ...flagHelp(RUN_CONFIG_FLAGS, {
      'min-faces': '1 for a single image',
      'full-detection-every': '0 for an image folder, whose images are unrelated',
      'reembed-every': '0 for an image folder',
    }),
    '  --crops DIR        keep small face crops under DIR for the events\' thumbnails: events point only at crops',
    '                     of enrolled people, other faces are blurred out of each crop, and every crop no event',
    '                     points at is deleted (a passer-by\'s face is not kept)',
    '  --keep-all-crops   keep every crop under DIR, unknown people\'s too',
    '  --no-redact        exempt this camera from that redaction (unknown tracks keep their thumbnails, crops',
    '                     keep their neighbours): only where everyone filmed has consented',
    '  --grace MS         on Ctrl-C, time to drain the frames taken (default 30000; at the end of a file',
    '                     everything taken is processed); Ctrl-C again forces',
    ...ENGINE_HELP,
  ],
  maxPositionals: 0,
  async run(ctx) {
    // 1. every flag, the gallery and the source are checked before the engine pool starts (seconds of model
    // loading), and every resource opened from then on is closed on every path, so an error exits at once
    // (issue 12: a bad source used to leave the pool's workers holding the process open forever)
    const sourceArg = str(ctx, 'source', true);
    const galleryFile = str(ctx, 'gallery', true);
    const cameraId = str(ctx, 'camera') ?? 'cam1';
    if (!/^[\w.:@/-]+$/.test(cameraId)) throw new UsageError('--camera may hold letters, digits and _ . : @ / -');
    if (ctx.values['keep-all-crops'] === true && str(ctx, 'crops') === undefined) throw new UsageError('--keep-all-crops needs --crops DIR');
    const config = runConfigs(ctx.values);
    const given = (flag: string): boolean => ctx.values[flag] !== undefined;
    const metricsPort = num(ctx, 'metrics-port', { min: 0, max: 65535, integer: true });
    const graceMs = num(ctx, 'grace', { min: 0, max: 3_600_000, integer: true }) ?? 30_000;
    const explicit = num(ctx, 'threshold', { min: 0, max: 2 });
    const workers = num(ctx, 'workers', { min: 1, max: 256, integer: true });
    const cfg = engineConfig(ctx);
    const cropDir = str(ctx, 'crops');
    const { snapshot, model: galleryModel } = await loadGallerySnapshot(galleryFile);
    // a gallery that --head (or its absence) cannot match fails here, before any model loads
    await precheckGalleryHead(ctx, galleryFile, galleryModel);

    const live = isStreamUrl(sourceArg);
    const sourceErrors: string[] = [];
    let source: FrameSource | undefined;
    let pool: EnginePool | undefined;
    let store: MemoryGalleryStore | undefined;
    let gallery: GalleryCache | undefined;
    let ingest: IngestStage | undefined;
    let ops: OpsServer | undefined;
    let pipeline: Pipeline<Awaited<ReturnType<IngestStage['pump']>>> | undefined;
    let failed = false;
    try {
      // the source is checked before the pool starts, and opened once the pipeline can take its frames (a
      // live stream's would go stale meanwhile; see prepareSource for a file's)
      const openSource = await prepareSource(sourceArg, cameraId, config.ingest.fps, (m) => sourceErrors.push(m));
      const folder = await isFolder(sourceArg);
      const oneImage = !live && !folder && imageContentType(sourceArg) !== undefined;
      const unrelatedImages = oneImage || folder;

      const logger = createLogger({ level: 'warn', sink: (line) => process.stderr.write(`${line}\n`) });
      const metrics = createMetrics({ collectDefault: true });
      const topics = topicNames('');
      pool = await EnginePool.start(cfg, workers);
      const model = pool.embedderInfo.name;
      assertGalleryModel(galleryFile, galleryModel, model, str(ctx, 'head'));
      // tracks are named as identify names faces (1:N): at the distance at FAR 1e-3, the head's own with --head
      const chosen = decisionThreshold(pool.embedderInfo, 'identify', explicit, { fallback: FALLBACK_THRESHOLD });
      printThresholdWarning(chosen.warning);
      const threshold = chosen.value;
      const thresholdSource = chosen.source === 'override' ? 'flag' : chosen.source;

      const bus = new InProcessBus({ maxLag: 32, publishTimeoutMs: 600_000, logger, metrics });
      store = new MemoryGalleryStore({ initial: snapshot, logger });
      gallery = new GalleryCache({ store, model, logger, metrics });
      await gallery.start();
      const crops = cropDir ? new DirCropStore(cropDir) : undefined;
      // the services' FACEFLOW_REDACT_EXEMPT_CAMERAS, for the one camera of this run
      const redactExemptCameras = ctx.values['no-redact'] === true ? [cameraId] : [];
      // the services' stages from the services' configs; what differs is said here, and why
      const embedder = createEmbedderStage(
        {
          ...config.embedder,
          // images of a folder are unrelated: nothing to follow from one to the next
          ...(unrelatedImages && !given('full-detection-every') ? { fullDetectionEveryMs: 0 } : {}),
          ...(unrelatedImages && !given('reembed-every') ? { reembedEveryMs: 0 } : {}),
          redactExemptCameras,
        },
        { runner: pool, workers: pool.size, topics, metrics, logger, ...(crops ? { crops } : {}) },
      );
      const matcher = createMatcherStage(config.matcher, { gallery, decision: { model, threshold }, topics, metrics });
      const trackTimeoutMs = config.alerts.trackTimeoutMs;
      const alerts = createAlertsStage(
        {
          ...config.alerts,
          // one image is one face per track: a track is confirmed by that face, or never
          ...(oneImage && !given('min-faces') ? { minFaces: 1 } : {}),
          // a file is read as fast as the engine goes, so the wall clock says nothing: the video's clock decides
          // (and the end of the file ends every track); a live source's silent camera ends its tracks
          idleMs: live ? Math.max(config.alerts.idleMs, trackTimeoutMs * 5) : Number.MAX_SAFE_INTEGER,
          redactExemptCameras,
          cropRetention: ctx.values['keep-all-crops'] === true ? 'all' : 'events',
        },
        { topics, metrics, logger, ...(crops ? { crops } : {}), ...(oneImage ? { minStable: 1 } : {}) },
      );
      const stage = createIngestStage(config.ingest, { publish: (t, m) => bus.publish(t, m), topics, metrics, logger });
      ingest = stage;

      source = await openSource();
      const src = source!;
      const startTs = src.startTs;
      const counts = { enter: 0, update: 0, exit: 0 };
      const print = (e: IdentityEvent): void => {
        counts[e.type]++;
        if (ctx.json) process.stdout.write(`${JSON.stringify({ ...e, startOffsetMs: e.startTs - startTs, endOffsetMs: e.endTs - startTs })}\n`);
        else process.stdout.write(`${eventLine(e, startTs)}\n`);
      };

      // progress (stderr; on a terminal or with --progress): frames through the engine, of those the source
      // says it will give (issue 12)
      const bar = src.frames !== undefined ? ctx.progress('run: frames', src.frames) : undefined;
      const counted: Stage = bar
        ? { name: embedder.stage.name, process: async (messages, hctx) => { const r = await embedder.stage.process(messages, hctx); bar.tick(messages.length); return r; } }
        : embedder.stage;
      // two phases, at the end of the source or on SIGINT/SIGTERM: stop intake, drain (within --grace after a
      // signal), end the open tracks, close; a second signal forces (the pipeline's states)
      pipeline = await Pipeline.start({
        bus,
        stages: [{ ...embedder, stage: counted }, matcher, alerts],
        sinks: [{ topic: topics.identityEvents, groupId: 'printer', handler: async (batch) => { for (const m of batch.messages) print(IdentityEventSchema.decode(m.value)); } }],
        intake: { run: () => stage.pump(src), stop: () => stage.stop() },
        graceMs,
        signals: true,
        onState: (state) => {
          if (state === 'stopping') process.stderr.write('faceflow run: stopping intake, draining (Ctrl-C again to force)\n');
        },
        logger,
        metrics,
      });
      const running = pipeline;
      if (metricsPort !== undefined) {
        ops = await startOpsServer({ port: metricsPort, host: '127.0.0.1', metrics, ready: () => running.state === 'running', logger });
        process.stderr.write(`faceflow run: metrics on ${ops.url}/metrics\n`);
      }

      const { intake: pumped, drained, stopped } = await pipeline.run();
      bar?.done();
      if (!drained) process.stderr.write('faceflow run: grace period over; frames still in the pipeline were not processed\n');
      const summary = {
        frames: pumped?.sent ?? 0,
        dropped: pumped?.dropped ?? {},
        events: counts,
        model,
        threshold,
        thresholdSource,
        qualityFloor: config.matcher.qualityFloor,
        galleryIdentities: gallery.size,
      };
      // a source that failed part-way is the one line of an error, which says how far it got
      const errors = sourceErrors.filter(Boolean);
      if (errors.length) throw new FaceflowError('INVALID_ARGUMENT', `source ${sourceArg}: ${errors.join('; ')} (${summary.frames} frame(s) processed, ${counts.enter} enter event(s))`);
      // ffmpeg decodes what it can of a damaged file and exits 0: far fewer frames than the file's header
      // promised says so (the events cover only the part that was read)
      const read = pumped?.read ?? 0;
      if (pumped && !stopped && !src.live && src.frames !== undefined && read < src.frames / 2) {
        process.stderr.write(`faceflow run: warning: ${sourceArg} gave ${read} of the ${src.frames} frames its header announces: is it truncated or damaged?\n`);
      }
      process.stderr.write(`faceflow run: ${JSON.stringify(summary)}\n`);
    } catch (e) {
      failed = true;
      throw e;
    } finally {
      // every closer runs even if another throws; on an error the command's own error is the one reported
      const p = pool;
      const s = source;
      const more: Closer[] = [
        ingest && ['ingest', () => ingest!.stop()],
        s && ['source', () => s.close()],
        gallery && ['gallery', () => gallery!.close()],
        store && ['gallery store', () => store!.close()],
        p && ['engine pool', () => p.close(2000)],
        ops && ['metrics server', () => ops!.close()],
      ];
      const onError = (name: string, e: unknown): void => void process.stderr.write(`faceflow run: warning: closing ${name}: ${(e as Error)?.message ?? String(e)}\n`);
      await (pipeline ? pipeline.close({ graceMs: failed ? 0 : 2000, more, onError }) : closeAll(more, onError)).catch((e: unknown) => {
        if (!failed) throw e;
        process.stderr.write(`faceflow run: warning: ${(e as Error)?.message ?? String(e)}\n`);
      });
    }
  },
};

/** One identity event as a line; an unknown person has no identity to be confident of (issue 12). */
export function eventLine(e: IdentityEvent, startTs: number): string {
  const span = e.type === 'enter' ? clock(e.startTs - startTs) : `${clock(e.startTs - startTs)}-${clock(e.endTs - startTs)}`;
  const who = e.identity ?? 'unknown';
  const confidence = e.identity === null ? 'not named'.padEnd(15) : `confidence ${e.confidence.toFixed(2)}`;
  return `${span.padEnd(15)} ${e.type.padEnd(6)} ${who.padEnd(16)} ${confidence}  camera ${e.cameraId}  track ${e.trackId}`;
}
