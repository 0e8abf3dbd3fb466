/**
 * `faceflow run`: the whole pipeline in one process. The same four stages as the services (ingest ->
 * embedder -> matcher -> alerts), wired with the InProcessBus instead of Kafka and a MemoryGalleryStore
 * loaded from the gallery file instead of Redis, so the one-process mode cannot drift from the distributed
 * one. Identity events are printed as they come: readable lines, or JSON lines with --json.
 *
 * Shutdown in two phases, at the end of the source or on SIGINT/SIGTERM: stop intake (the source is
 * closed), let the frames already taken drain through the stages within --grace, end the open tracks (exit
 * events), then close; a second signal forces it.
 */
import { readFile } from 'node:fs/promises';
import { stat } from 'node:fs/promises';
import { decodeImage, EnginePool, galleryReadError, thresholdsFor } from '@faceflow/engine';
import { AlertsStage } from '@faceflow/alerts';
import { DEFAULT_FULL_DETECTION_EVERY_MS, DEFAULT_REEMBED_EVERY_MS, EmbedderStage } from '@faceflow/embedder';
import { ffmpegSource, folderSource, imageContentType, imageFileSource, IngestStage, isStreamUrl, probeVideo, type FrameSource } from '@faceflow/ingest';
import { DEFAULT_MATCH_QUALITY_FLOOR, FALLBACK_THRESHOLD, GalleryCache, MatcherStage } from '@faceflow/matcher';
import {
  attachStage,
  closeAll,
  DirCropStore,
  FaceflowError,
  IdentityEventSchema,
  InProcessBus,
  Outbox,
  MemoryGalleryStore,
  parseGalleryFile,
  topicNames,
  type GallerySnapshot,
  type IdentityEvent,
  type Stage,
} from '@faceflow/shared';
import { createLogger, createMetrics, startOpsServer, type OpsServer } from '@faceflow/shared/ops';
import { type CommandSpec, num, str, UsageError } from '../cli.js';
import { galleryKeyOption } from '../gallery-key.js';
import { ENGINE_FLAGS, ENGINE_HELP, engineConfig, galleryModelMismatch, precheckGalleryHead, warnIdentifyFallback } from '../engine-setup.js';

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
    source: { type: 'string' },
    gallery: { type: 'string' },
    'metrics-port': { type: 'string' },
    fps: { type: 'string' },
    camera: { type: 'string' },
    threshold: { type: 'string' },
    margin: { type: 'string' },
    'quality-floor': { type: 'string' },
    'max-batch': { type: 'string' },
    'max-wait': { type: 'string' },
    'full-detection-every': { type: 'string' },
    'reembed-every': { type: 'string' },
    'track-timeout': { type: 'string' },
    'min-faces': { type: 'string' },
    cooldown: { type: 'string' },
    watch: { type: 'string' },
    'no-unknown': { type: 'boolean', default: false },
    'min-confidence': { type: 'string' },
    crops: { type: 'string' },
    'keep-all-crops': { type: 'boolean', default: false },
    'no-redact': { type: 'boolean', default: false },
    grace: { type: 'string' },
  },
  help: [
    '  --source S         a video file, an rtsp:// or http(s):// stream (through ffmpeg), a folder of images or one image',
    '  --gallery FILE     the gallery (faceflow enroll writes one)',
    '  --camera ID        camera id of the source (default "cam1")',
    '  --fps N            frame-rate cap (default 5)',
    '  --metrics-port N   serve /metrics, /healthz and /readyz on this port while running',
    '  --threshold T      L2 distance under which a track is named (default: the model\'s calibrated distance at',
    '                     FAR 1e-3; with --head, the head\'s own, measured on its validation identities)',
    '  --margin M         the nearest identity must beat the second by M (default 0.03)',
    `  --quality-floor Q  faces under quality Q (0..1) are tracked but never named (default ${DEFAULT_MATCH_QUALITY_FLOOR},`,
    '                     the enrolment floor; 0 turns it off); a track of only such faces stays unknown',
    '  --min-faces N      faces a track needs before it is announced (default 3; 1 for a single image)',
    '  --track-timeout MS a track unseen for this long (video time) has left (default 2000)',
    '  --cooldown MS      no second enter for the same person on the same camera within MS (default 30000)',
    '  --watch A,B        announce only these identities (default: everyone enrolled)',
    '  --no-unknown       do not announce unknown faces',
    '  --min-confidence C announce a named track only from this confidence (0..1, default 0)',
    '  --max-batch N      frames per engine batch (default 8); --max-wait MS: wait for a batch (default 20)',
    '  --full-detection-every MS  look at the whole frame (and its tiles, for small faces) every MS of video',
    '                     time, and in between only near the last faces (default 1000 for video and streams:',
    '                     a new face is found up to MS late; 0 for an image folder, whose images are unrelated)',
    '  --reembed-every MS a face followed from the previous frame is embedded again only after MS of video time',
    '                     (default 400 for video and streams, 0 = every frame; 0 for an image folder)',
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
    const fps = num(ctx, 'fps', { min: 0.1, max: 120 });
    const metricsPort = num(ctx, 'metrics-port', { min: 0, max: 65535, integer: true });
    const margin = num(ctx, 'margin', { min: 0, max: 2 }) ?? 0.03;
    const qualityFloor = num(ctx, 'quality-floor', { min: 0, max: 1 }) ?? DEFAULT_MATCH_QUALITY_FLOOR;
    const trackTimeoutMs = num(ctx, 'track-timeout', { min: 100, max: 600_000, integer: true }) ?? 2000;
    const graceMs = num(ctx, 'grace', { min: 0, max: 3_600_000, integer: true }) ?? 30_000;
    const fullDetectionEveryMs = num(ctx, 'full-detection-every', { min: 0, max: 600_000, integer: true });
    const reembedEveryMs = num(ctx, 'reembed-every', { min: 0, max: 600_000, integer: true });
    const explicit = num(ctx, 'threshold', { min: 0, max: 2 });
    const maxBatch = num(ctx, 'max-batch', { min: 1, max: 256, integer: true }) ?? 8;
    const maxWaitMs = num(ctx, 'max-wait', { min: 0, max: 10_000, integer: true }) ?? 20;
    const rules = {
      watch: (str(ctx, 'watch') ?? '').split(',').map((s) => s.trim()).filter(Boolean),
      unknown: ctx.values['no-unknown'] !== true,
      minFaces: num(ctx, 'min-faces', { min: 1, max: 1000, integer: true }),
      cooldownMs: num(ctx, 'cooldown', { min: 0, max: 86_400_000, integer: true }) ?? 30_000,
      minConfidence: num(ctx, 'min-confidence', { min: 0, max: 1 }) ?? 0,
    };
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
    let bus: InProcessBus | undefined;
    let store: MemoryGalleryStore | undefined;
    let gallery: GalleryCache | undefined;
    let ingest: IngestStage | undefined;
    let ops: OpsServer | undefined;
    let sweeper: NodeJS.Timeout | undefined;
    let outbox: Outbox | undefined;
    let onSignal: (() => void) | undefined;
    let failed = false;
    try {
      // the source is checked before the pool starts, and opened once the pipeline can take its frames (a
      // live stream's would go stale meanwhile; see prepareSource for a file's)
      const openSource = await prepareSource(sourceArg, cameraId, fps, (m) => sourceErrors.push(m));
      const folder = await isFolder(sourceArg);
      const oneImage = !live && !folder && imageContentType(sourceArg) !== undefined;
      const unrelatedImages = oneImage || folder;

      const logger = createLogger({ level: 'warn', sink: (line) => process.stderr.write(`${line}\n`) });
      const metrics = createMetrics({ collectDefault: true });
      const topics = topicNames('');
      pool = await EnginePool.start(cfg, workers);
      const model = pool.embedderInfo.name;
      if (galleryModel !== undefined && galleryModel !== model) throw galleryModelMismatch(galleryFile, galleryModel, model, str(ctx, 'head'));
      // tracks are named as identify names faces (1:N): at the distance at FAR 1e-3, the head's own with --head
      const calibrated = thresholdsFor(pool.embedderInfo);
      if (explicit === undefined && calibrated?.fallback) warnIdentifyFallback(model, calibrated.distanceAtFar1e3);
      const threshold = explicit ?? calibrated?.distanceAtFar1e3 ?? FALLBACK_THRESHOLD;
      const thresholdSource =
        explicit !== undefined ? 'flag' : !calibrated ? 'fallback' : calibrated.fallback ? 'head-accuracy-optimal' : calibrated.source === 'model' ? 'head-far-1e-3' : 'calibration-far-1e-3';

      bus = new InProcessBus({ maxLag: 32, publishTimeoutMs: 600_000, logger, metrics });
      store = new MemoryGalleryStore({ initial: snapshot, logger });
      gallery = new GalleryCache({ store, model, logger, metrics });
      await gallery.start();
      const crops = cropDir ? new DirCropStore(cropDir) : undefined;
      // the services' FACEFLOW_REDACT_EXEMPT_CAMERAS, for the one camera of this run
      const redactExemptCameras = ctx.values['no-redact'] === true ? [cameraId] : [];
      const embedder = new EmbedderStage({
        runner: pool,
        facesTopic: topics.faces,
        maxBatch,
        maxWaitMs,
        maxInFlight: pool.size,
        fullDetectionEveryMs: fullDetectionEveryMs ?? (unrelatedImages ? 0 : DEFAULT_FULL_DETECTION_EVERY_MS),
        reembedEveryMs: reembedEveryMs ?? (unrelatedImages ? 0 : DEFAULT_REEMBED_EVERY_MS),
        metrics,
        logger,
        ...(crops ? { crops } : {}),
        redactExemptCameras,
      });
      const matcher = new MatcherStage({ gallery, matchesTopic: topics.matches, threshold, margin, qualityFloor, tracker: { timeoutMs: trackTimeoutMs }, metrics });
      const alerts = new AlertsStage({
        eventsTopic: topics.identityEvents,
        // one image is one face per track: a track is confirmed by that face, or never
        rules: { ...rules, minFaces: rules.minFaces ?? (oneImage ? 1 : 3), ...(oneImage ? { minStable: 1 } : {}) },
        trackTimeoutMs,
        // a file is read as fast as the engine goes, so the wall clock says nothing: the video's clock decides
        // (and the end of the file ends every track); a live source's silent camera ends its tracks after 10 s
        idleMs: live ? Math.max(10_000, trackTimeoutMs * 5) : Number.MAX_SAFE_INTEGER,
        redactExemptCameras,
        ...(crops ? { crops } : {}),
        keepAllCrops: ctx.values['keep-all-crops'] === true,
        metrics,
        logger,
      });
      const theBus = bus;
      const stage = new IngestStage({ publish: (t, m) => theBus.publish(t, m), framesTopic: topics.frames, metrics, logger });
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
        ? { name: embedder.name, process: async (messages, hctx) => { const r = await embedder.process(messages, hctx); bar.tick(messages.length); return r; } }
        : embedder;
      await attachStage(bus, counted, topics.frames, 'embedder', { maxBatchSize: 8 });
      await attachStage(bus, matcher, topics.faces, 'matcher');
      await attachStage(bus, alerts, topics.matches, 'alerts');
      await bus.subscribe(topics.identityEvents, 'printer', async (batch) => {
        for (const m of batch.messages) print(IdentityEventSchema.decode(m.value));
      });
      // the sweeper's exits of idle tracks go through an outbox, as in the alerts service: held and retried until
      // published, never dropped (issue 12)
      const sweptOut = new Outbox({ publish: (t, m) => theBus.publish(t, m), pendingMetric: 'alerts_pending_events', what: 'identity events', logger, metrics });
      outbox = sweptOut;
      sweeper = setInterval(() => sweptOut.add(alerts.sweep()), 1000);

      let stopping = false;
      let signalledAt: number | undefined;
      if (metricsPort !== undefined) {
        ops = await startOpsServer({ port: metricsPort, host: '127.0.0.1', metrics, ready: () => !stopping, logger });
        process.stderr.write(`faceflow run: metrics on ${ops.url}/metrics\n`);
      }

      let forced: () => void = () => undefined;
      const force = new Promise<void>((r) => (forced = r));
      onSignal = (): void => {
        if (signalledAt === undefined) {
          signalledAt = Date.now();
          stopping = true;
          process.stderr.write('faceflow run: stopping intake, draining (Ctrl-C again to force)\n');
          stage.stop();
        } else {
          forced();
        }
      };
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);

      // at the end of a file everything taken is processed, however long it takes; after a signal (stop intake)
      // the frames taken get --grace to drain, and a second signal forces the close at once
      const drained = async (topicList: string[]): Promise<boolean> => {
        let forcedNow = false;
        void force.then(() => (forcedNow = true));
        while (topicList.some((t) => theBus.retained(t).length > 0)) {
          if (forcedNow || (signalledAt !== undefined && Date.now() > signalledAt + graceMs)) return false;
          await Promise.race([theBus.waitForChange(200), force]);
        }
        return true;
      };

      const pumped = await Promise.race([stage.pump(src), force.then(() => undefined)]);
      stopping = true;
      // phase 2: drain what was taken, then end the open tracks
      const ok = await drained([topics.frames, topics.faces, topics.matches]);
      bar?.done();
      if (!ok) process.stderr.write('faceflow run: grace period over; frames still in the pipeline were not processed\n');
      clearInterval(sweeper);
      sweptOut.add(alerts.flush());
      await sweptOut.close(graceMs);
      await drained([topics.identityEvents]);
      await alerts.settled();
      const summary = {
        frames: pumped?.sent ?? 0,
        dropped: pumped?.dropped ?? {},
        events: counts,
        model,
        threshold,
        thresholdSource,
        qualityFloor,
        galleryIdentities: gallery.size,
      };
      // a source that failed part-way is the one line of an error, which says how far it got
      const errors = sourceErrors.filter(Boolean);
      if (errors.length) throw new FaceflowError('INVALID_ARGUMENT', `source ${sourceArg}: ${errors.join('; ')} (${summary.frames} frame(s) processed, ${counts.enter} enter event(s))`);
      // ffmpeg decodes what it can of a damaged file and exits 0: far fewer frames than the file's header
      // promised says so (the events cover only the part that was read)
      const read = pumped?.read ?? 0;
      if (pumped && signalledAt === undefined && !src.live && src.frames !== undefined && read < src.frames / 2) {
        process.stderr.write(`faceflow run: warning: ${sourceArg} gave ${read} of the ${src.frames} frames its header announces: is it truncated or damaged?\n`);
      }
      process.stderr.write(`faceflow run: ${JSON.stringify(summary)}\n`);
    } catch (e) {
      failed = true;
      throw e;
    } finally {
      // every closer runs even if another throws; on an error the command's own error is the one reported
      const handler = onSignal;
      const b = bus;
      const p = pool;
      const s = source;
      await closeAll(
        [
          ['timers', () => clearInterval(sweeper)],
          outbox && ['outbox', () => outbox!.close(0)],
          handler && ['signal handlers', () => (process.off('SIGINT', handler), process.off('SIGTERM', handler))],
          ingest && ['ingest', () => ingest!.stop()],
          s && ['source', () => s.close()],
          b && ['bus', () => b.close({ graceMs: failed ? 0 : 2000 })],
          gallery && ['gallery', () => gallery!.close()],
          store && ['gallery store', () => store!.close()],
          p && ['engine pool', () => p.close(2000)],
          ops && ['metrics server', () => ops!.close()],
        ],
        (name, e) => process.stderr.write(`faceflow run: warning: closing ${name}: ${(e as Error)?.message ?? String(e)}\n`),
      ).catch((e: unknown) => {
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
