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
 * pair of services shows at once instead of comparing embeddings that cannot be compared.
 *
 * The matcher runs no model (issue 13): its gallery API lists, deletes and enrols by embedding (of the
 * gallery's model); enrolment by photo is the embedder service's (PUT /v1/identities/<id> there). Beside it,
 * the recurring-stranger clusters API (clusters-api.ts: list, show, enrol a cluster as an identity).
 */
import { attachBinding, AuditTrail, closeAll, kafkaConnectionOf, onShutdown, redisConnectionOf, topicNames } from '@faceflow/shared';
import { createLogger, createMetrics, galleryApi, HealthMonitor, startOpsServer } from '@faceflow/shared/ops';
import { KafkaBus, pollConsumerLag } from '@faceflow/shared/kafka';
import { RedisGalleryStore } from '@faceflow/shared/redis';
import { clusterIdPrefix, matcherClusterThreshold, matcherConfig, matcherModelAndThreshold, unknownClusterConfig } from './config.js';
import { GalleryCache } from './gallery-cache.js';
import { createStage } from './create-stage.js';
import { clustersApi } from './clusters-api.js';

export { matcherConfig } from './config.js';

async function main(): Promise<void> {
  const config = matcherConfig.load();
  const clusterConfig = unknownClusterConfig.load();
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
  const cluster = matcherClusterThreshold(config, clusterConfig.threshold);
  if (cluster.warning && clusterConfig.retentionMs > 0) logger.warn(cluster.warning, { model, threshold: cluster.threshold });
  // erasure (issue 15): a deleted person's unknown clusters (built before they were enrolled) go with them
  let clusterer: { removeNear(e: readonly Float32Array[]): string[] } | undefined;
  const onDelete = (identity: string, embeddings: Float32Array[]): void => {
    const removed = clusterer?.removeNear(embeddings) ?? [];
    if (removed.length) logger.info('erased the unknown clusters of a deleted identity', { identity, clusters: removed.length });
  };
  const cache = new GalleryCache({ store, model, logger, metrics, onDelete, search: { method: config.searchMethod, approx: config.searchApprox, approxRows: config.searchApproxRows } });
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
  // the stage is made before the ops server so that the clusters API reaches its clusterer (issue 14)
  const binding = createStage(config, { gallery: cache, decision: { model, threshold }, topics, metrics, unknownClusters: { threshold: cluster.threshold, retentionMs: clusterConfig.retentionMs, idPrefix: clusterIdPrefix() } });
  clusterer = binding.stage.unknownClusterer;
  const keyDigests = [...(config.apiKeys ?? [])];
  const audit = { trail: new AuditTrail({ logger, service: 'matcher', bus, topic: topics.audit }), gallery: config.galleryPrefix };
  const gallery = galleryApi({ store, keyDigests, manage: true, model, logger, audit });
  const clusters = clustersApi({ clusterer: binding.stage.unknownClusterer, store, keyDigests, logger, audit });
  const ops = await startOpsServer({
    port: config.httpPort,
    host: config.httpHost,
    metrics,
    logger,
    ready: () => ({ ready: ready && health.ok, dependencies: health.report() }),
    handle: async (req, res) => (await gallery(req, res)) || clusters(req, res),
  });
  await cache.start(); // the cache sets the gallery gauges on every change (issue 12: they lagged by the refresh period)
  const refresher = setInterval(() => void cache.refresh().catch(() => undefined), config.galleryRefreshMs);
  await bus.createTopics([topics.faces, topics.matches, `${topics.faces}.dlq`, topics.audit].map((topic) => ({ topic, partitions: config.partitions })));
  const sub = await attachBinding(bus, binding);
  const stopLag = pollConsumerLag(bus, metrics, [{ topic: topics.faces, groupId: config.groupId }], 5000, logger);
  await health.start();
  ready = true;
  logger.info('matcher ready', { port: ops.port, model, threshold, thresholdSource, margin: config.margin, qualityFloor: config.qualityFloor, unknownClusters: clusterConfig.retentionMs > 0 ? { threshold: cluster.threshold, source: cluster.source, retentionMs: clusterConfig.retentionMs } : 'off', galleryVersion: cache.version, identities: cache.size });
  onShutdown(
    async () => {
      ready = false;
      clearInterval(refresher);
      stopLag();
      health.stop();
      // every closer runs even if another throws
      await closeAll(
        [
          ['subscription', () => sub.close({ graceMs: config.graceMs })],
          ['bus', () => bus.close({ graceMs: config.graceMs })],
          ['gallery cache', () => cache.close()],
          ['gallery store', () => store.close()],
          ['ops server', () => ops.close()],
        ],
        (name, err) => logger.error('closing failed', { name, err }),
      );
    },
    logger,
    config.graceMs,
  );
}

main().catch((e: unknown) => {
  createLogger({ bindings: { service: 'matcher' } }).fatal('matcher failed to start', { err: e });
  process.exit(1);
});
