#!/usr/bin/env node
/**
 * The ingest service: the ingest stage (stage.ts) over Kafka. Pulls the configured sources (a video file,
 * RTSP or HTTP stream per camera, through ffmpeg, capped at FACEFLOW_INGEST_FPS) and serves the HTTP push
 * API (push-api.ts); frames go to the frames topic keyed by camera id. A source that fails is logged,
 * counted, shown in /readyz and retried (supervisor.ts); /readyz is 503 while the broker does not answer
 * (health.ts), and a push is then refused at once with 503 + Retry-After (issue 12).
 */
import { existsSync, statSync } from 'node:fs';
import { closeAll, kafkaConnectionOf, onShutdown, topicNames } from '@faceflow/shared';
import { createLogger, createMetrics, HealthMonitor, startOpsServer } from '@faceflow/shared/ops';
import { KafkaBus } from '@faceflow/shared/kafka';
import { pushApi } from './push-api.js';
import { ffmpegSource, folderSource, isStreamUrl, type FrameSource } from './sources.js';
import { ingestConfig } from './config.js';
import { createStage } from './create-stage.js';
import { SourceSupervisor } from './supervisor.js';

async function main(): Promise<void> {
  const config = ingestConfig.load();
  const logger = createLogger({ level: config.logLevel, bindings: { service: 'ingest' } });
  const metrics = createMetrics({ collectDefault: true, defaultLabels: { service: 'ingest' } });
  const topics = topicNames(config.topicPrefix);
  const bus = new KafkaBus({ ...kafkaConnectionOf(config), clientId: 'faceflow-ingest', logger, metrics });
  await bus.createTopics([topics.frames, topics.framesDlq].map((topic) => ({ topic, partitions: config.partitions })));
  const health = new HealthMonitor({ dependencies: [{ name: 'kafka', check: () => bus.ping() }], logger, metrics });
  await health.start();
  const stage = createStage(config, { publish: (t, m) => bus.publish(t, m), available: () => health.ok, topics, metrics, logger });
  let ready = false;
  const stopping = new AbortController();
  const supervisors = config.sources.map(
    ([cameraId, src]) =>
      [
        cameraId,
        new SourceSupervisor({
          cameraId,
          source: src,
          live: isStreamUrl(src),
          open: async (onError): Promise<FrameSource> => {
            if (existsSync(src) && statSync(src).isDirectory()) return folderSource({ dir: src, cameraId, fps: config.fps });
            return ffmpegSource({ source: src, cameraId, fps: config.fps, maxWidth: config.maxWidth, onError });
          },
          pump: (s) => stage.pump(s),
          retryMaxMs: config.sourceRetryMaxMs,
          logger,
          metrics,
          signal: stopping.signal,
        }),
      ] as const,
  );
  const ops = await startOpsServer({
    port: config.httpPort,
    host: config.httpHost,
    metrics,
    logger,
    // a failing source shows in the body; the status follows the broker only, so that one camera that is down
    // does not take the push API of every other camera out of the load balancer
    ready: () => ({
      ready: ready && health.ok,
      dependencies: health.report(),
      sources: Object.fromEntries(supervisors.map(([c, s]) => [c, s.status])),
    }),
    handle: pushApi({ stage, keys: new Map(config.apiKeys), maxBytes: config.maxBytes, maxPixels: config.maxPixels, metrics }),
  });
  const pumps = supervisors.map(([, s]) => s.run());
  ready = true;
  logger.info('ingest ready', { port: ops.port, frames: topics.frames, cameras: config.sources.map(([c]) => c), pushCameras: config.apiKeys.map(([c]) => c) });
  onShutdown(
    async () => {
      ready = false;
      stopping.abort();
      stage.stop();
      health.stop();
      await Promise.race([Promise.allSettled(pumps), new Promise((r) => setTimeout(r, config.graceMs))]);
      // every closer runs even if another throws
      await closeAll([['bus', () => bus.close({ graceMs: config.graceMs })], ['ops server', () => ops.close()]], (name, err) => logger.error('closing failed', { name, err }));
    },
    logger,
    config.graceMs,
  );
  await Promise.allSettled(pumps);
}

main().catch((e: unknown) => {
  createLogger({ bindings: { service: 'ingest' } }).fatal('ingest failed to start', { err: e });
  process.exit(1);
});
