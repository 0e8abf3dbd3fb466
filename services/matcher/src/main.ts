#!/usr/bin/env node
/**
 * The matcher service: the matcher stage (stage.ts) over Kafka, faces in, matches out. The gallery's source
 * of truth is the GalleryStore in Redis (rebuildable from a gallery file with `faceflow`); each instance
 * holds it in memory for search and follows its change notifications (version + pub/sub), with a periodic
 * version check as a backstop (e.g. after Redis restarted). Also serves the gallery management API.
 */
import { decodeImage, FaceEngine, calibrationFor } from '@faceflow/engine';
import {
  attachStage,
  baseConfigFields,
  createLogger,
  createMetrics,
  defineConfig,
  FaceflowError,
  field,
  onShutdown,
  optional,
  parsers,
  serviceConfigFields,
  startOpsServer,
  topicNames,
} from '@faceflow/shared';
import { KafkaBus, pollConsumerLag } from '@faceflow/shared/kafka';
import { DEFAULT_GALLERY_KEY_PREFIX, RedisGalleryStore } from '@faceflow/shared/redis';
import { galleryApi, type Embedder } from './gallery-api.js';
import { GalleryCache } from './gallery-cache.js';
import { DEFAULT_MATCH_QUALITY_FLOOR, FALLBACK_THRESHOLD, MatcherStage } from './stage.js';

export const matcherConfig = defineConfig({
  ...baseConfigFields,
  ...serviceConfigFields,
  groupId: field({ env: 'FACEFLOW_MATCHER_GROUP', default: 'faceflow-matcher', parse: parsers.string({ max: 255 }), doc: 'consumer group on the faces topic' }),
  model: field({ env: 'FACEFLOW_MODEL', default: 'faceapi-recognition', parse: parsers.string({ max: 128 }), doc: 'embedding model of the gallery (its calibration gives the threshold)' }),
  threshold: optional({ env: 'FACEFLOW_MATCH_THRESHOLD', parse: parsers.number({ min: 0, max: 2 }), doc: 'L2 distance under which a track is named (default: the model calibration at FAR 1e-3)' }),
  margin: field({ env: 'FACEFLOW_MATCH_MARGIN', default: 0.03, parse: parsers.number({ min: 0, max: 2 }), doc: 'the nearest identity must beat the second by this distance' }),
  qualityFloor: field({
    env: 'FACEFLOW_MATCH_QUALITY_FLOOR',
    default: DEFAULT_MATCH_QUALITY_FLOOR,
    parse: parsers.number({ min: 0, max: 1 }),
    doc: 'faces under this quality score (0..1) are tracked but never named (default: the engine enrolment floor; 0 turns it off)',
  }),
  trackTimeoutMs: field({ env: 'FACEFLOW_TRACK_TIMEOUT', default: 2000, parse: parsers.durationMs({ min: 100, max: 600_000 }), doc: 'a track unseen for this long (capture time) ends' }),
  galleryPrefix: field({ env: 'FACEFLOW_GALLERY_PREFIX', default: DEFAULT_GALLERY_KEY_PREFIX, parse: parsers.string({ max: 200 }), doc: 'Redis key prefix of the gallery' }),
  galleryRefreshMs: field({ env: 'FACEFLOW_GALLERY_REFRESH', default: 10_000, parse: parsers.durationMs({ min: 100 }), doc: 'backstop: compare the gallery version this often' }),
  apiKeys: optional({ env: 'FACEFLOW_GALLERY_API_KEYS_SHA256', parse: parsers.list(parsers.string({ pattern: /^[0-9a-f]{64}$/ })), secret: true, doc: 'hex SHA-256 of each gallery API key (none: the API refuses every call)' }),
});

async function main(): Promise<void> {
  const config = matcherConfig.load();
  const logger = createLogger({ level: config.logLevel, bindings: { service: 'matcher' } });
  const metrics = createMetrics({ collectDefault: true, defaultLabels: { service: 'matcher' } });
  const topics = topicNames(config.topicPrefix);
  const bus = new KafkaBus({ brokers: [...config.kafkaBrokers], clientId: 'faceflow-matcher', logger, metrics });
  const store = await RedisGalleryStore.open({ url: config.redisUrl, keyPrefix: config.galleryPrefix, logger });
  const cache = new GalleryCache({ store, model: config.model, logger });
  let ready = false;
  let engine: Promise<FaceEngine> | undefined;
  const embedder = async (): Promise<Embedder> => {
    engine ??= FaceEngine.load({ models: { embedder: config.model } });
    const e = await engine;
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
    ready: () => ready,
    handle: galleryApi({ store, keyDigests: [...(config.apiKeys ?? [])], embedder, logger }),
  });
  const galleryVersion = metrics.gauge({ name: 'gallery_version', help: 'Gallery version held in memory' });
  const gallerySize = metrics.gauge({ name: 'gallery_identities', help: 'Identities in the gallery held in memory' });
  const onChange = (): void => {
    galleryVersion.set({}, cache.version);
    gallerySize.set({}, cache.size);
  };
  await cache.start();
  onChange();
  const refresher = setInterval(() => void cache.refresh().then(onChange, () => undefined), config.galleryRefreshMs);
  const threshold = config.threshold ?? calibrationFor(config.model)?.distanceAtFar1e3 ?? FALLBACK_THRESHOLD;
  await bus.createTopics([topics.faces, topics.matches, `${topics.faces}.dlq`].map((topic) => ({ topic, partitions: config.partitions })));
  const stage = new MatcherStage({ gallery: cache, matchesTopic: topics.matches, threshold, margin: config.margin, qualityFloor: config.qualityFloor, tracker: { timeoutMs: config.trackTimeoutMs }, metrics });
  const sub = await attachStage(bus, stage, topics.faces, config.groupId, { maxBatchSize: 200 });
  const stopLag = pollConsumerLag(bus, metrics, [{ topic: topics.faces, groupId: config.groupId }], 5000, logger);
  ready = true;
  logger.info('matcher ready', { port: ops.port, threshold, margin: config.margin, qualityFloor: config.qualityFloor, galleryVersion: cache.version, identities: cache.size });
  onShutdown(
    async () => {
      ready = false;
      clearInterval(refresher);
      stopLag();
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
