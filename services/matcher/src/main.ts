#!/usr/bin/env node
/**
 * The matcher service: the matcher stage (stage.ts) over Kafka, faces in, matches out. The gallery's source
 * of truth is the GalleryStore in Redis (rebuildable from a gallery file with `faceflow`); each instance
 * holds it in memory for search and follows its change notifications (version + pub/sub), with a periodic
 * version check as a backstop (e.g. after Redis restarted). Also serves the gallery management API.
 *
 * A projection head (`faceflow train`): when the embedder runs with FACEFLOW_HEAD, the matcher must be given
 * the same FACEFLOW_HEAD. It reads only the head's head.json at start-up (it loads no model): the gallery's
 * model becomes the head's embedder name (FACEFLOW_MODEL + head), and the default threshold the head's distance
 * at FAR 1e-3 on its validation identities (its accuracy-optimal one for a head trained before heads recorded
 * that, with a warning). Faces of another model or head are refused (dead-lettered), so a half-configured
 * pair of services shows at once instead of comparing embeddings that cannot be compared. The gallery API
 * embeds enrolment images through the same head.
 */
import { decodeImage, FaceEngine } from '@faceflow/engine';
import { attachStage, AuditTrail, createLogger, createMetrics, FaceflowError, HealthMonitor, kafkaConnectionOf, onShutdown, redisConnectionOf, startOpsServer, topicNames } from '@faceflow/shared';
import { KafkaBus, pollConsumerLag } from '@faceflow/shared/kafka';
import { RedisGalleryStore } from '@faceflow/shared/redis';
import { matcherConfig, matcherModelAndThreshold } from './config.js';
import { galleryApi, type Embedder } from './gallery-api.js';
import { GalleryCache } from './gallery-cache.js';
import { MatcherStage } from './stage.js';

export { matcherConfig } from './config.js';

async function main(): Promise<void> {
  const config = matcherConfig.load();
  const logger = createLogger({ level: config.logLevel, bindings: { service: 'matcher' } });
  const metrics = createMetrics({ collectDefault: true, defaultLabels: { service: 'matcher' } });
  const topics = topicNames(config.topicPrefix);
  const bus = new KafkaBus({ ...kafkaConnectionOf(config), clientId: 'faceflow-matcher', logger, metrics });
  // issue 15: sealed at rest with FACEFLOW_GALLERY_KEY_FILE; without it the store warns that templates are in plaintext
  const store = await RedisGalleryStore.open({ ...redisConnectionOf(config), keyPrefix: config.galleryPrefix, logger, ...(config.galleryKey ? { key: config.galleryKey } : {}) });
  const { model, threshold, thresholdSource } = matcherModelAndThreshold(config);
  if (thresholdSource === 'head-accuracy-optimal') {
    logger.warn("the projection head records no distance at FAR 1e-3 (trained before heads did): tracks are named at its accuracy-optimal threshold, which names more strangers; train it again or set FACEFLOW_MATCH_THRESHOLD", { head: config.head!.dir, threshold });
  }
  if (thresholdSource === 'fallback') logger.warn('no calibration for FACEFLOW_MODEL and no FACEFLOW_MATCH_THRESHOLD: using the fallback threshold', { model, threshold });
  const cache = new GalleryCache({ store, model, logger, metrics, search: { method: config.searchMethod, approx: config.searchApprox, approxRows: config.searchApproxRows } });
  let ready = false;
  // readiness follows the broker and Redis (issue 12); liveness (/livez) does not, so an outage restarts nothing
  const health = new HealthMonitor({
    dependencies: [
      { name: 'kafka', check: () => bus.ping() },
      { name: 'redis', check: () => store.version() },
    ],
    logger,
    metrics,
  });
  let engine: Promise<FaceEngine> | undefined;
  const embedder = async (): Promise<Embedder> => {
    engine ??= FaceEngine.load({ models: { embedder: config.model }, ...(config.head ? { head: config.head.dir } : {}) });
    const e = await engine;
    if (e.embedderInfo.name !== model) {
      throw new FaceflowError('INVALID_CONFIG', `the engine makes "${e.embedderInfo.name}" embeddings, the gallery holds "${model}" ones (did ${config.head?.dir ?? 'the head'} change since start-up?)`);
    }
    return {
      async embedLargestFace(bytes) {
        const image = await decodeImage(bytes, { maxBytes: 10 * 1024 * 1024 });
        const [faces] = await e.run([image]);
        if (!faces?.length) throw new FaceflowError('NO_FACE', 'no face found in the image');
        const f = faces.reduce((a, b) => (b.box.width * b.box.height > a.box.width * a.box.height ? b : a));
        return Array.from(f.embedding!);
      },
    };
  };
  const ops = await startOpsServer({
    port: config.httpPort,
    host: config.httpHost,
    metrics,
    logger,
    ready: () => ({ ready: ready && health.ok, dependencies: health.report() }),
    handle: galleryApi({ store, keyDigests: [...(config.apiKeys ?? [])], embedder, logger, audit: { trail: new AuditTrail({ logger, service: 'matcher', bus, topic: topics.audit }), gallery: config.galleryPrefix } }),
  });
  await cache.start(); // the cache sets the gallery gauges on every change (issue 12: they lagged by the refresh period)
  const refresher = setInterval(() => void cache.refresh().catch(() => undefined), config.galleryRefreshMs);
  await bus.createTopics([topics.faces, topics.matches, `${topics.faces}.dlq`, topics.audit].map((topic) => ({ topic, partitions: config.partitions })));
  const stage = new MatcherStage({ gallery: cache, matchesTopic: topics.matches, model, threshold, margin: config.margin, qualityFloor: config.qualityFloor, tracker: { timeoutMs: config.trackTimeoutMs }, metrics });
  const sub = await attachStage(bus, stage, topics.faces, config.groupId, { maxBatchSize: 200 });
  const stopLag = pollConsumerLag(bus, metrics, [{ topic: topics.faces, groupId: config.groupId }], 5000, logger);
  await health.start();
  ready = true;
  logger.info('matcher ready', { port: ops.port, model, threshold, thresholdSource, margin: config.margin, qualityFloor: config.qualityFloor, galleryVersion: cache.version, identities: cache.size });
  onShutdown(
    async () => {
      ready = false;
      clearInterval(refresher);
      stopLag();
      health.stop();
      await sub.close({ graceMs: config.graceMs });
      await bus.close({ graceMs: config.graceMs });
      await cache.close();
      await store.close();
      if (engine) (await engine).dispose();
      await ops.close();
    },
    logger,
    config.graceMs,
  );
}

main().catch((e: unknown) => {
  createLogger({ bindings: { service: 'matcher' } }).fatal('matcher failed to start', { err: e });
  process.exit(1);
});
