#!/usr/bin/env node
/**
 * The embedder service: the embedder stage (stage.ts) over Kafka. A consumer group on the frames topic
 * (add instances to add throughput: partitions are shared out), faces to the faces topic, what cannot be
 * processed to frames.dlq (with headers). Offsets are committed after the faces are published: a worker
 * killed mid-batch loses no frame (its frames are redelivered; the matcher drops the duplicate faces).
 */
import os from 'node:os';
import { EnginePool } from '@faceflow/engine';
import {
  attachStage,
  baseConfigFields,
  createLogger,
  createMetrics,
  defineConfig,
  DirCropStore,
  field,
  HealthMonitor,
  onShutdown,
  optional,
  parsers,
  redactionConfigFields,
  serviceConfigFields,
  startOpsServer,
  topicNames,
  kafkaConnectionOf,
} from '@faceflow/shared';
import { KafkaBus, pollConsumerLag } from '@faceflow/shared/kafka';
import { EMBEDDER_MASK_METHODS, type EmbedderMaskMethod } from './face-mask.js';
import { DEFAULT_FULL_DETECTION_EVERY_MS, DEFAULT_REEMBED_EVERY_MS } from './scheduler.js';
import { EmbedderStage } from './stage.js';

export const embedderConfig = defineConfig({
  ...baseConfigFields,
  ...serviceConfigFields,
  groupId: field({ env: 'FACEFLOW_EMBEDDER_GROUP', default: 'faceflow-embedder', parse: parsers.string({ max: 255 }), doc: 'consumer group on the frames topic' }),
  workers: field({ env: 'FACEFLOW_EMBEDDER_WORKERS', default: os.availableParallelism(), parse: parsers.int({ min: 1, max: 256 }), doc: 'engine worker threads' }),
  maxBatch: field({ env: 'FACEFLOW_EMBEDDER_MAX_BATCH', default: 8, parse: parsers.int({ min: 1, max: 256 }), doc: 'frames per engine batch' }),
  maxWaitMs: field({ env: 'FACEFLOW_EMBEDDER_MAX_WAIT', default: 20, parse: parsers.durationMs({ max: 10_000 }), doc: 'how long a batch waits to fill' }),
  backend: optional({ env: 'FACEFLOW_BACKEND', parse: parsers.oneOf(['auto', 'tensorflow', 'wasm', 'cpu'] as const), doc: 'TF.js backend' }),
  cropDir: optional({ env: 'FACEFLOW_CROP_DIR', parse: parsers.string({ max: 4096 }), doc: 'keep a small crop of every face under this folder' }),
  mask: field({
    env: 'FACEFLOW_EMBEDDER_MASK',
    default: 'landmarks' as EmbedderMaskMethod,
    parse: parsers.oneOf(EMBEDDER_MASK_METHODS),
    doc: 'face outline in each Face message: landmarks (from the 68 landmarks, no model) | none; the face mesh is not wired in the pool',
  }),
  fullDetectionEveryMs: field({
    env: 'FACEFLOW_FULL_DETECTION_EVERY',
    default: DEFAULT_FULL_DETECTION_EVERY_MS,
    parse: parsers.durationMs({ max: 600_000 }),
    doc: 'capture time between full detections of a camera; in between, faces are looked for near the last ones (0: every frame)',
  }),
  reembedEveryMs: field({
    env: 'FACEFLOW_REEMBED_EVERY',
    default: DEFAULT_REEMBED_EVERY_MS,
    parse: parsers.durationMs({ max: 600_000 }),
    doc: 'a face followed from the previous frame is embedded and published again only after this much capture time (0: every frame)',
  }),
  minFaceSize: field({ env: 'FACEFLOW_MIN_FACE', default: 40, parse: parsers.int({ min: 8, max: 10_000 }), doc: 'smallest face side to find in a full detection, in pixels (smaller costs more tiles)' }),
  flip: field({ env: 'FACEFLOW_EMBED_FLIP', default: true, parse: parsers.boolean(), doc: 'average each embedding with the mirrored face (costs a second forward pass)' }),
  detector: optional({
    env: 'FACEFLOW_DETECTOR',
    parse: parsers.string({ max: 200 }),
    doc: 'face detector: blazeface (the default) | yunet (ONNX Runtime; installed by faceflow models pull yunet-2023mar) | a registry name (issue 11)',
  }),
  head: optional({ env: 'FACEFLOW_HEAD', parse: parsers.string({ max: 4096 }), doc: 'folder of a projection head trained by faceflow train, applied to every embedding' }),
  ...redactionConfigFields,
});

async function main(): Promise<void> {
  const config = embedderConfig.load();
  const logger = createLogger({ level: config.logLevel, bindings: { service: 'embedder' } });
  const metrics = createMetrics({ collectDefault: true, defaultLabels: { service: 'embedder' } });
  const topics = topicNames(config.topicPrefix);
  const bus = new KafkaBus({ ...kafkaConnectionOf(config), clientId: 'faceflow-embedder', logger, metrics });
  let ready = false;
  // readiness follows the broker (issue 12); liveness (/livez) does not, so an outage restarts nothing
  const health = new HealthMonitor({ dependencies: [{ name: 'kafka', check: () => bus.ping() }], logger, metrics });
  const ops = await startOpsServer({ port: config.httpPort, host: config.httpHost, metrics, logger, ready: () => ({ ready: ready && health.ok, dependencies: health.report() }) });
  logger.info('loading the engine', { workers: config.workers });
  const pool = await EnginePool.start(
    {
      ...(config.backend ? { backend: config.backend } : {}),
      ...(config.head ? { head: config.head } : {}),
      detector: { minFaceSize: config.minFaceSize },
      ...(config.detector ? { models: { detector: config.detector } } : {}),
      flip: config.flip,
    },
    config.workers,
  );
  await bus.createTopics([topics.frames, topics.faces, topics.framesDlq].map((topic) => ({ topic, partitions: config.partitions })));
  const stage = new EmbedderStage({
    runner: pool,
    facesTopic: topics.faces,
    maxBatch: config.maxBatch,
    maxWaitMs: config.maxWaitMs,
    maxFacesPerFrame: 32,
    fullDetectionEveryMs: config.fullDetectionEveryMs,
    reembedEveryMs: config.reembedEveryMs,
    // a batch per worker in flight: a slow full detection on one does not leave the other idle
    maxInFlight: config.workers,
    mask: config.mask,
    redactExemptCameras: config.redactExemptCameras,
    metrics,
    logger,
    ...(config.cropDir ? { crops: new DirCropStore(config.cropDir) } : {}),
  });
  // several partitions at once, so that frames of several cameras meet in one engine batch
  const sub = await attachStage(bus, stage, topics.frames, config.groupId, { maxBatchSize: config.maxBatch, concurrency: config.partitions });
  const stopLag = pollConsumerLag(bus, metrics, [{ topic: topics.frames, groupId: config.groupId }], 5000, logger);
  await health.start();
  ready = true;
  logger.info('embedder ready', { port: ops.port, model: pool.embedderInfo.name, frames: topics.frames, faces: topics.faces, group: config.groupId });
  onShutdown(
    async () => {
      ready = false;
      stopLag();
      health.stop();
      // every closer runs even if another throws
      const results = await Promise.allSettled([sub.close({ graceMs: config.graceMs })]);
      results.push(...(await Promise.allSettled([bus.close({ graceMs: config.graceMs })])));
      results.push(...(await Promise.allSettled([pool.close(1000), ops.close()])));
      const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) throw failed.reason;
    },
    logger,
    config.graceMs,
  );
}

main().catch((e: unknown) => {
  createLogger({ bindings: { service: 'embedder' } }).fatal('embedder failed to start', { err: e });
  process.exit(1);
});
