/**
 * `faceflow run`: the whole pipeline in one process. The same four stages as the services (ingest ->
 * embedder -> matcher -> alerts), wired with the InProcessBus instead of Kafka and a MemoryGalleryStore
 * loaded from the gallery file instead of Redis, so the one-process mode cannot drift from the distributed
 * one. Identity events are printed as they come: readable lines, or JSON lines with --json. The stages are the
 * services' own (`createStage`, from their config fields, which also make run's flags: issue 13 step 4); their
 * composition lives here, the one place that depends on all four services. The source is ingest's
 * (prepareSource), the gallery and the threshold policy the engine's, the running and the two-phase shutdown
 * `@faceflow/shared/pipeline`'s.
 */
import { decisionThreshold, decodeImage, EnginePool } from '@faceflow/engine';
import { assertGalleryModel, clusterThreshold, FALLBACK_THRESHOLD, precheckGalleryHead, readGallerySnapshot } from '@faceflow/engine/match';
import { alertsConfig, createStage as createAlertsStage } from '@faceflow/alerts';
import { createStage as createEmbedderStage, embedderConfig } from '@faceflow/embedder';
import { createStage as createIngestStage, ingestConfig, prepareSource, type FrameSource, type IngestStage } from '@faceflow/ingest';
import { clusterIdPrefix, createStage as createMatcherStage, GalleryCache, matcherConfig, unknownClusterConfig } from '@faceflow/matcher';
import { closeAll, DirCropStore, FaceflowError, IdentityEventSchema, InProcessBus, MemoryGalleryStore, topicNames, type Closer, type ConfigField, type IdentityEvent, type Stage } from '@faceflow/shared';
import { createLogger, createMetrics, startOpsServer, type OpsServer } from '@faceflow/shared/ops';
import { Pipeline } from '@faceflow/shared/pipeline';
import { type CommandSpec, num, str, UsageError } from '../cli.js';
import { configFlags, flagEnv, flagHelp, flagOptions, loadWithFlags } from '../config-flags.js';
import { galleryKeyOption } from '../gallery-key.js';
import { ENGINE_FLAGS, ENGINE_HELP, engineConfig, printThresholdWarning } from '../engine-setup.js';

const [I, E, M, A, U] = [ingestConfig.fields, embedderConfig.fields, matcherConfig.fields, alertsConfig.fields, unknownClusterConfig.fields];

/**
 * The services' settings that `faceflow run` takes as flags: the services' own config fields (one definition
 * each: flag name, parser, range, default and doc come from there; issue 13 step 4). FACEFLOW_TRACK_TIMEOUT
 * is one field read by the matcher and alerts, so one flag. Every other field keeps its default here
 * (packages/cli/test/run-flags.test.ts lists each, and why it is not a flag).
 */
export const RUN_CONFIG_FLAGS = configFlags([
  I.fps, M.margin, M.qualityFloor, A.minFaces, M.trackTimeoutMs, A.cooldownMs, A.watch, A.unknown, A.minConfidence,
  E.maxBatch, E.maxWaitMs, E.fullDetectionEveryMs, E.reembedEveryMs, E.lateFrameMs, U.retentionMs, U.threshold,
] as ConfigField<unknown>[]);

/** The four services' configurations as `faceflow run` runs them: the fields' defaults, and the flags given. */
export function runConfigs(values: Readonly<Record<string, unknown>>) {
  const env = flagEnv(RUN_CONFIG_FLAGS, values);
  return loadWithFlags(RUN_CONFIG_FLAGS, () => ({ ingest: ingestConfig.load(env), embedder: embedderConfig.load(env), matcher: matcherConfig.load(env), alerts: alertsConfig.load(env), clusters: unknownClusterConfig.load(env) }));
}

function clock(ms: number): string {
  const s = Math.max(0, ms) / 1000;
  const m = Math.floor(s / 60);
  return `${String(m).padStart(2, '0')}:${(s - m * 60).toFixed(1).padStart(4, '0')}`;
}

export const runPipeline: CommandSpec = {
  name: 'run',
  summary: 'the whole pipeline in one process: a video file, stream or image folder in, identity events out',
  usage: 'faceflow run --source <video file | rtsp/http url | image folder> --gallery <file> [--json] [--metrics-port N] [--fps N] [--camera ID]',
  flags: {
    ...ENGINE_FLAGS,
    ...flagOptions(RUN_CONFIG_FLAGS),
    ...Object.fromEntries(['source', 'gallery', 'metrics-port', 'camera', 'threshold', 'crops', 'grace'].map((f) => [f, { type: 'string' as const }])),
    'keep-all-crops': { type: 'boolean', default: false },
    'no-redact': { type: 'boolean', default: false },
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
      'late-frame': 'frames of a file or folder are never late',
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
    // every flag, the gallery and the source are checked before the engine pool starts (seconds of model
    // loading), and every resource opened from then on is closed on every path, so an error exits at once
    // (issue 12: a bad source used to leave the pool's workers holding the process open forever)
    const sourceArg = str(ctx, 'source', true);
    const galleryFile = str(ctx, 'gallery', true);
    const cameraId = str(ctx, 'camera') ?? 'cam1';
    if (!/^[\w.:@/-]+$/.test(cameraId)) throw new UsageError('--camera may hold letters, digits and _ . : @ / -');
    const cropDir = str(ctx, 'crops');
    if (ctx.values['keep-all-crops'] === true && cropDir === undefined) throw new UsageError('--keep-all-crops needs --crops DIR');
    const config = runConfigs(ctx.values);
    const given = (flag: string): boolean => ctx.values[flag] !== undefined;
    const metricsPort = num(ctx, 'metrics-port', { min: 0, max: 65535, integer: true });
    const graceMs = num(ctx, 'grace', { min: 0, max: 3_600_000, integer: true }) ?? 30_000;
    const explicit = num(ctx, 'threshold', { min: 0, max: 2 });
    const workers = num(ctx, 'workers', { min: 1, max: 256, integer: true });
    const cfg = engineConfig(ctx);
    const { snapshot, model: galleryModel } = await readGallerySnapshot(galleryFile, galleryKeyOption().key);
    // a gallery that --head (or its absence) cannot match fails here, before any model loads
    await precheckGalleryHead(galleryFile, galleryModel, { head: str(ctx, 'head'), embedder: str(ctx, 'embedder') });

    // what is open, closed on every path
    const open: { source?: FrameSource; pool?: EnginePool; store?: MemoryGalleryStore; gallery?: GalleryCache; ingest?: IngestStage; ops?: OpsServer } = {};
    let pipeline: Pipeline<Awaited<ReturnType<IngestStage['pump']>>> | undefined;
    let failed = false;
    try {
      // the source is checked before the pool starts, and opened once the pipeline can take its frames
      const prepared = await prepareSource({ source: sourceArg, cameraId, fps: config.ingest.fps, checkImage: decodeImage });
      const { live } = prepared;
      const oneImage = prepared.kind === 'image';
      const unrelatedImages = oneImage || prepared.kind === 'folder';

      const logger = createLogger({ level: 'warn', sink: (line) => process.stderr.write(`${line}\n`) });
      const metrics = createMetrics({ collectDefault: true });
      const topics = topicNames('');
      const pool = (open.pool = await EnginePool.start(cfg, workers));
      const model = pool.embedderInfo.name;
      assertGalleryModel(galleryFile, galleryModel, model, str(ctx, 'head'));
      // tracks are named as identify names faces (1:N): at the distance at FAR 1e-3, the head's own with --head
      const chosen = decisionThreshold(pool.embedderInfo, 'identify', explicit, { fallback: FALLBACK_THRESHOLD });
      printThresholdWarning(chosen.warning);
      const threshold = chosen.value;

      const bus = new InProcessBus({ maxLag: 32, publishTimeoutMs: 600_000, logger, metrics });
      const store = (open.store = new MemoryGalleryStore({ initial: snapshot, logger }));
      const gallery = (open.gallery = new GalleryCache({ store, model, logger, metrics }));
      await gallery.start();
      const crops = cropDir ? { crops: new DirCropStore(cropDir) } : {};
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
        { runner: pool, workers: pool.size, topics, metrics, logger, ...crops },
      );
      // recurring strangers (issue 14), as the matcher service groups them: at the model's FAR-1e-4 distance
      const clusters = clusterThreshold(pool.embedderInfo, config.clusters.threshold, { fallback: FALLBACK_THRESHOLD, fix: 'set --unknown-cluster-threshold' });
      if (config.clusters.retentionMs > 0) printThresholdWarning(clusters.warning);
      const unknownClusters = { threshold: clusters.value, retentionMs: config.clusters.retentionMs, idPrefix: clusterIdPrefix() };
      const matcher = createMatcherStage(config.matcher, { gallery, decision: { model, threshold }, topics, metrics, unknownClusters });
      const alerts = createAlertsStage(
        {
          ...config.alerts,
          // one image is one face per track: a track is confirmed by that face, or never
          ...(oneImage && !given('min-faces') ? { minFaces: 1 } : {}),
          // a file is read as fast as the engine goes, so the wall clock says nothing: the video's clock decides
          // (and the end of the file ends every track); a live source's silent camera ends its tracks
          idleMs: live ? Math.max(config.alerts.idleMs, config.alerts.trackTimeoutMs * 5) : Number.MAX_SAFE_INTEGER,
          redactExemptCameras,
          cropRetention: ctx.values['keep-all-crops'] === true ? 'all' : 'events',
        },
        { topics, metrics, logger, ...crops, ...(oneImage ? { minStable: 1 } : {}) },
      );
      const stage = (open.ingest = createIngestStage(config.ingest, { publish: (t, m) => bus.publish(t, m), topics, metrics, logger }));

      const src = (open.source = await prepared.open());
      const counts = { enter: 0, update: 0, exit: 0 };
      const print = (e: IdentityEvent): void => {
        counts[e.type]++;
        if (ctx.json) process.stdout.write(`${JSON.stringify({ ...e, startOffsetMs: e.startTs - src.startTs, endOffsetMs: e.endTs - src.startTs })}\n`);
        else process.stdout.write(`${eventLine(e, src.startTs)}\n`);
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
        bus, graceMs, signals: true, logger, metrics,
        stages: [{ ...embedder, stage: counted }, matcher, alerts],
        sinks: [{ topic: topics.identityEvents, groupId: 'printer', handler: async (batch) => { for (const m of batch.messages) print(IdentityEventSchema.decode(m.value)); } }],
        intake: { run: () => stage.pump(src), stop: () => stage.stop() },
        onState: (state) => void (state === 'stopping' && process.stderr.write('faceflow run: stopping intake, draining (Ctrl-C again to force)\n')),
      });
      const running = pipeline;
      if (metricsPort !== undefined) {
        const ops = (open.ops = await startOpsServer({ port: metricsPort, host: '127.0.0.1', metrics, ready: () => running.state === 'running', logger }));
        process.stderr.write(`faceflow run: metrics on ${ops.url}/metrics\n`);
      }

      const { intake: pumped, drained, stopped } = await pipeline.run();
      bar?.done();
      if (!drained) process.stderr.write('faceflow run: grace period over; frames still in the pipeline were not processed\n');
      const thresholdSource = chosen.source === 'override' ? 'flag' : chosen.source;
      // the run's recurring strangers, without their embeddings (a summary is printed, embeddings never are)
      const strangers = matcher.stage.unknownClusters().map(({ id, members, firstSeen, lastSeen, cameras }) => ({ id, members, firstSeenOffsetMs: firstSeen - src.startTs, lastSeenOffsetMs: lastSeen - src.startTs, cameras }));
      const summary = { frames: pumped?.sent ?? 0, dropped: pumped?.dropped ?? {}, events: counts, model, threshold, thresholdSource, qualityFloor: config.matcher.qualityFloor, galleryIdentities: gallery.size, unknownClusters: strangers };
      // a source that failed part-way is the one line of an error, which says how far it got
      const { errors, warning } = prepared.report(pumped?.read ?? 0, !pumped || stopped);
      if (errors.length) throw new FaceflowError('INVALID_ARGUMENT', `source ${sourceArg}: ${errors.join('; ')} (${summary.frames} frame(s) processed, ${counts.enter} enter event(s))`);
      if (warning) process.stderr.write(`faceflow run: warning: ${warning}\n`);
      process.stderr.write(`faceflow run: ${JSON.stringify(summary)}\n`);
    } catch (e) {
      failed = true;
      throw e;
    } finally {
      // every closer runs even if another throws; on an error the command's own error is the one reported
      const { ingest: i, source: s, gallery: g, store: st, pool: p, ops: o } = open;
      const more: Closer[] = [
        i && ['ingest', () => i.stop()],
        s && ['source', () => s.close()],
        g && ['gallery', () => g.close()],
        st && ['gallery store', () => st.close()],
        p && ['engine pool', () => p.close(2000)],
        o && ['metrics server', () => o.close()],
      ];
      const warn = (m: string): void => void process.stderr.write(`faceflow run: warning: ${m}\n`);
      const onError = (name: string, e: unknown): void => warn(`closing ${name}: ${(e as Error)?.message ?? String(e)}`);
      await (pipeline ? pipeline.close({ graceMs: failed ? 0 : 2000, more, onError }) : closeAll(more, onError)).catch((e: unknown) => {
        if (!failed) throw e;
        warn((e as Error)?.message ?? String(e));
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
