#!/usr/bin/env node
/**
 * The embedder service: the embedder stage (stage.ts) over Kafka. A consumer group on the frames topic
 * (add instances to add throughput: partitions are shared out), faces to the faces topic, what cannot be
 * processed to frames.dlq (with headers). Offsets are committed after the faces are published: a worker
 * killed mid-batch loses no frame (its frames are redelivered; the matcher drops the duplicate faces).
 *
 * It also serves enrolment by image (issue 13: the matcher runs no model): PUT /v1/identities/<id> with a
 * photo, embedded by this service's engine (its head, its detector) and written to the gallery store in
 * Redis, with the gallery API's auth (FACEFLOW_GALLERY_API_KEYS_SHA256), body limit and audit trail. The
 * store is opened only when API keys are set; without them the route refuses every call.
 */
import { EnginePool } from '@faceflow/engine';
import { attachBinding, AuditTrail, closeAll, DirCropStore, FaceflowError, kafkaConnectionOf, onShutdown, redisConnectionOf, topicNames } from '@faceflow/shared';
import { createLogger, createMetrics, galleryApi, HealthMonitor, startOpsServer } from '@faceflow/shared/ops';
import { KafkaBus, pollConsumerLag } from '@faceflow/shared/kafka';
import { RedisGalleryStore } from '@faceflow/shared/redis';
import { embedderConfig } from './config.js';
import { createStage } from './create-stage.js';
import { enrolmentEmbedder } from './enrol.js';

async function main(): Promise<void> {
  const config = embedderConfig.load();
  const logger = createLogger({ level: config.logLevel, bindings: { service: 'embedder' } });
  const metrics = createMetrics({ collectDefault: true, defaultLabels: { service: 'embedder' } });
  const topics = topicNames(config.topicPrefix);
  const bus = new KafkaBus({ ...kafkaConnectionOf(config), clientId: 'faceflow-embedder', logger, metrics });
  let ready = false;
  const keyDigests = [...(config.apiKeys ?? [])];
  // issue 15: sealed at rest with FACEFLOW_GALLERY_KEY_FILE, as the matcher's; opened only when enrolment is on
  const store = keyDigests.length
    ? await RedisGalleryStore.open({ ...redisConnectionOf(config), keyPrefix: config.galleryPrefix, logger, ...(config.galleryKey ? { key: config.galleryKey } : {}) })
    : undefined;
  // readiness follows the broker (issue 12), and Redis where enrolment writes to it; liveness (/livez) does
  // not, so an outage restarts nothing
  const health = new HealthMonitor({
    dependencies: [{ name: 'kafka', check: () => bus.ping() }, ...(store ? [{ name: 'redis', check: () => store.version() }] : [])],
    logger,
    metrics,
  });
  // enrolment answers once the engine is loaded (until then: not ready, and the route waits for it)
  let embedImage: ((bytes: Buffer) => Promise<number[]>) | undefined;
  const ops = await startOpsServer({
    port: config.httpPort,
    host: config.httpHost,
    metrics,
    logger,
    ready: () => ({ ready: ready && health.ok, dependencies: health.report() }),
    handle: galleryApi({
      store,
      keyDigests,
      embedImage: async (bytes) => {
        if (!embedImage) throw new FaceflowError('BACKEND_UNAVAILABLE', 'the engine is still loading: try again shortly');
        return embedImage(bytes);
      },
      logger,
      audit: { trail: new AuditTrail({ logger, service: 'embedder', bus, topic: topics.audit }), gallery: config.galleryPrefix },
    }),
  });
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
  embedImage = enrolmentEmbedder(pool);
  await bus.createTopics([topics.frames, topics.faces, topics.framesDlq, topics.audit].map((topic) => ({ topic, partitions: config.partitions })));
  const binding = createStage(config, {
    runner: pool,
    workers: config.workers,
    topics,
    metrics,
    logger,
    ...(config.cropDir ? { crops: new DirCropStore(config.cropDir) } : {}),
  });
  const sub = await attachBinding(bus, binding);
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
      await closeAll(
        [
          ['subscription', () => sub.close({ graceMs: config.graceMs })],
          ['bus', () => bus.close({ graceMs: config.graceMs })],
          ['engine pool', () => pool.close(1000)],
          ['ops server', () => ops.close()],
          store && ['gallery store', () => store.close()],
        ],
        (name, err) => logger.error('closing failed', { name, err }),
      );
    },
    logger,
    config.graceMs,
  );
}

main().catch((e: unknown) => {
  createLogger({ bindings: { service: 'embedder' } }).fatal('embedder failed to start', { err: e });
  process.exit(1);
});
