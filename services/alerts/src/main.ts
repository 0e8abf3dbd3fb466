#!/usr/bin/env node
/**
 * The alerts service: the alerts stage (stage.ts) over Kafka, matches in, identity events out on the
 * identity-events topic (JSON, schema "identity-event" v1: see packages/shared/src/schemas/identity-event.ts),
 * keyed by camera id. Rules come from the environment. Tracks whose camera went silent are ended on a timer;
 * their exit events go through an outbox (retried until published, counted by faceflow_alerts_pending_events:
 * a Kafka outage delays them, never drops them; issue 12). /readyz follows the broker (health.ts).
 */
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
  Outbox,
  optional,
  parsers,
  redactionConfigFields,
  serviceConfigFields,
  startOpsServer,
  topicNames,
  kafkaConnectionOf,
} from '@faceflow/shared';
import { KafkaBus, pollConsumerLag } from '@faceflow/shared/kafka';
import { AlertsStage } from './stage.js';

const list = parsers.list(parsers.string({ max: 256 }), { min: 0 });

export const alertsConfig = defineConfig({
  ...baseConfigFields,
  ...serviceConfigFields,
  groupId: field({ env: 'FACEFLOW_ALERTS_GROUP', default: 'faceflow-alerts', parse: parsers.string({ max: 255 }), doc: 'consumer group on the matches topic' }),
  watch: field({ env: 'FACEFLOW_ALERT_WATCH', default: [] as string[], parse: list, doc: 'identities to announce, comma-separated (empty: all)' }),
  unknown: field({ env: 'FACEFLOW_ALERT_UNKNOWN', default: true, parse: parsers.boolean(), doc: 'announce unknown faces' }),
  cameras: field({ env: 'FACEFLOW_ALERT_CAMERAS', default: [] as string[], parse: list, doc: 'cameras to announce, comma-separated (empty: all)' }),
  minConfidence: field({ env: 'FACEFLOW_ALERT_MIN_CONFIDENCE', default: 0, parse: parsers.number({ min: 0, max: 1 }), doc: 'smallest confidence to announce a named track' }),
  minFaces: field({ env: 'FACEFLOW_ALERT_MIN_FACES', default: 3, parse: parsers.int({ min: 1, max: 1000 }), doc: 'faces a track needs before it is announced' }),
  cooldownMs: field({ env: 'FACEFLOW_ALERT_COOLDOWN', default: 30_000, parse: parsers.durationMs({ max: 86_400_000 }), doc: 'no second enter of an identity on a camera within this time' }),
  trackTimeoutMs: field({ env: 'FACEFLOW_TRACK_TIMEOUT', default: 2000, parse: parsers.durationMs({ min: 100, max: 600_000 }), doc: 'a track unseen for this long (capture time) has left' }),
  idleMs: field({ env: 'FACEFLOW_ALERT_IDLE', default: 10_000, parse: parsers.durationMs({ min: 100 }), doc: 'a track whose camera sent nothing for this long (wall time) has left' }),
  cropDir: optional({ env: 'FACEFLOW_CROP_DIR', parse: parsers.string({ max: 4096 }), doc: "the embedder's crop folder (the same volume): crops no event points at are deleted from it" }),
  cropRetention: field({
    env: 'FACEFLOW_CROP_RETENTION',
    default: 'events' as 'events' | 'all',
    parse: parsers.oneOf(['events', 'all'] as const),
    doc: "events: keep only the crops identity events point at (enrolled people's thumbnails); all: keep every crop",
  }),
  ...redactionConfigFields,
});

async function main(): Promise<void> {
  const config = alertsConfig.load();
  const logger = createLogger({ level: config.logLevel, bindings: { service: 'alerts' } });
  const metrics = createMetrics({ collectDefault: true, defaultLabels: { service: 'alerts' } });
  const topics = topicNames(config.topicPrefix);
  const bus = new KafkaBus({ ...kafkaConnectionOf(config), clientId: 'faceflow-alerts', logger, metrics });
  let ready = false;
  const health = new HealthMonitor({ dependencies: [{ name: 'kafka', check: () => bus.ping() }], logger, metrics });
  const outbox = new Outbox({ publish: (t, m) => bus.publish(t, m), pendingMetric: 'alerts_pending_events', what: 'identity events', logger, metrics });
  const ops = await startOpsServer({
    port: config.httpPort,
    host: config.httpHost,
    metrics,
    logger,
    ready: () => ({ ready: ready && health.ok, dependencies: health.report(), pendingEvents: outbox.pending }),
  });
  await bus.createTopics([topics.matches, topics.identityEvents, `${topics.matches}.dlq`].map((topic) => ({ topic, partitions: config.partitions })));
  const stage = new AlertsStage({
    eventsTopic: topics.identityEvents,
    rules: { watch: [...config.watch], unknown: config.unknown, cameras: [...config.cameras], minConfidence: config.minConfidence, minFaces: config.minFaces, cooldownMs: config.cooldownMs },
    trackTimeoutMs: config.trackTimeoutMs,
    idleMs: config.idleMs,
    redactExemptCameras: config.redactExemptCameras,
    ...(config.cropDir ? { crops: new DirCropStore(config.cropDir) } : {}),
    keepAllCrops: config.cropRetention === 'all',
    metrics,
    logger,
  });
  const sub = await attachStage(bus, stage, topics.matches, config.groupId, { maxBatchSize: 200 });
  // the sweep is applied to the stage at once (a repeated exit would be a duplicate); its events are held
  // by the outbox until they are out
  const sweeper = setInterval(() => outbox.add(stage.sweep()), 1000);
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
      const results = await Promise.allSettled([sub.close({ graceMs: config.graceMs })]);
      // no more batches: the tracks still open end here, so that every enter has its exit (a track that goes
      // on after a restart is entered again by the next instance)
      try {
        outbox.add(stage.flush());
      } catch (e) {
        results.push({ status: 'rejected', reason: e });
      }
      results.push(...(await Promise.allSettled([outbox.close(config.graceMs)])));
      results.push(...(await Promise.allSettled([stage.settled()])));
      results.push(...(await Promise.allSettled([bus.close({ graceMs: config.graceMs })])));
      results.push(...(await Promise.allSettled([ops.close()])));
      const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) throw failed.reason;
    },
    logger,
    config.graceMs,
  );
}

main().catch((e: unknown) => {
  createLogger({ bindings: { service: 'alerts' } }).fatal('alerts failed to start', { err: e });
  process.exit(1);
});
