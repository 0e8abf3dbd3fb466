#!/usr/bin/env node
/**
 * The alerts service: the alerts stage (stage.ts) over Kafka, matches in, identity events out on the
 * identity-events topic (JSON, schema "identity-event" v1: see packages/shared/src/schemas/identity-event.ts),
 * keyed by camera id. Rules come from the environment. Tracks whose camera went silent are ended on a timer;
 * their exit events go through an outbox (retried until published, counted by faceflow_alerts_pending_events:
 * a Kafka outage delays them, never drops them; issue 12). /readyz follows the broker (health.ts).
 * Erasure (issue 15 item 3): it follows the gallery's change notifications in Redis (no key: it reads no
 * template) and, when an identity is deleted, forgets its tracks and deletes its thumbnails (stage.forget).
 */
import { attachBinding, closeAll, DirCropStore, kafkaConnectionOf, onShutdown, Outbox, redisConnectionOf, topicNames } from '@faceflow/shared';
import { createLogger, createMetrics, HealthMonitor, startOpsServer } from '@faceflow/shared/ops';
import { KafkaBus, pollConsumerLag } from '@faceflow/shared/kafka';
import { subscribeGalleryChanges } from '@faceflow/shared/redis';
import { alertsConfig } from './config.js';
import { createStage } from './create-stage.js';

async function main(): Promise<void> {
  const config = alertsConfig.load();
  const logger = createLogger({ level: config.logLevel, bindings: { service: 'alerts' } });
  const metrics = createMetrics({ collectDefault: true, defaultLabels: { service: 'alerts' } });
  const topics = topicNames(config.topicPrefix);
  const bus = new KafkaBus({ ...kafkaConnectionOf(config), clientId: 'faceflow-alerts', logger, metrics });
  let ready = false;
  const health = new HealthMonitor({ dependencies: [{ name: 'kafka', check: () => bus.ping() }], logger, metrics });
  const binding = createStage(config, { topics, metrics, logger, ...(config.cropDir ? { crops: new DirCropStore(config.cropDir) } : {}) });
  const stage = binding.stage;
  const sweep = binding.sweep!;
  // the sweep is applied to the stage at once (a repeated exit would be a duplicate); its events are held
  // by the outbox until they are out
  const outbox = new Outbox({ publish: (t, m) => bus.publish(t, m), pendingMetric: sweep.pendingMetric, what: sweep.what, logger, metrics });
  const ops = await startOpsServer({
    port: config.httpPort,
    host: config.httpHost,
    metrics,
    logger,
    ready: () => ({ ready: ready && health.ok, dependencies: health.report(), pendingEvents: outbox.pending }),
  });
  // erasure: a deleted identity's tracks and thumbnails go (a notification missed while Redis was unreachable
  // is not replayed: `faceflow gallery delete NAME --crops DIR` erases the thumbnails again, docs/security.md)
  const stopChanges = await subscribeGalleryChanges({ ...redisConnectionOf(config), keyPrefix: config.galleryPrefix, logger }, (c) => {
    if (c.type === 'enroll') stage.remember(c.identity);
    if (c.type !== 'delete') return;
    stage.forget(c.identity).then(
      (crops) => logger.info('identity erased: tracks forgotten, thumbnails deleted', { galleryVersion: c.version, crops }),
      (e: unknown) => logger.error('erasing the thumbnails of a deleted identity failed: run faceflow gallery delete with --crops again', { galleryVersion: c.version, err: e }),
    );
  });
  await bus.createTopics([topics.matches, topics.identityEvents, `${topics.matches}.dlq`].map((topic) => ({ topic, partitions: config.partitions })));
  const sub = await attachBinding(bus, binding);
  const sweeper = setInterval(() => outbox.add(sweep.run()), sweep.everyMs);
  await health.start();
  const stopLag = pollConsumerLag(bus, metrics, [{ topic: topics.matches, groupId: config.groupId }], 5000, logger);
  ready = true;
  logger.info('alerts ready', { port: ops.port, events: topics.identityEvents, rules: stage.rules, redactExemptCameras: config.redactExemptCameras, cropDir: config.cropDir ?? null, cropRetention: config.cropRetention });
  onShutdown(
    async () => {
      ready = false;
      clearInterval(sweeper);
      stopLag();
      health.stop();
      // every closer runs even if another throws
      await closeAll(
        [
          ['subscription', () => sub.close({ graceMs: config.graceMs })],
          ['gallery changes', () => stopChanges()],
          // no more batches: the tracks still open end here, so that every enter has its exit (a track that
          // goes on after a restart is entered again by the next instance)
          ['open tracks', () => outbox.add(binding.flush!())],
          ['outbox', () => outbox.close(config.graceMs)],
          ['crop deletions', () => binding.settled!()],
          ['bus', () => bus.close({ graceMs: config.graceMs })],
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
  createLogger({ bindings: { service: 'alerts' } }).fatal('alerts failed to start', { err: e });
  process.exit(1);
});
