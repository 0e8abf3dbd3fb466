#!/usr/bin/env node
/**
 * The ingest service: the ingest stage (stage.ts) over Kafka. Pulls the configured sources (a video file,
 * RTSP or HTTP stream per camera, through ffmpeg, capped at FACEFLOW_INGEST_FPS) and serves the HTTP push
 * API (push-api.ts); frames go to the frames topic keyed by camera id. A source that fails is logged,
 * counted, shown in /readyz and retried (supervisor.ts); /readyz is 503 while the broker does not answer
 * (health.ts), and a push is then refused at once with 503 + Retry-After (issue 12).
 */
import { existsSync, statSync } from 'node:fs';
import {
  baseConfigFields,
  createLogger,
  createMetrics,
  defineConfig,
  field,
  HealthMonitor,
  MAX_IMAGE_PIXELS,
  onShutdown,
  parsers,
  serviceConfigFields,
  startOpsServer,
  topicNames,
  kafkaConnectionOf,
} from '@faceflow/shared';
import { KafkaBus } from '@faceflow/shared/kafka';
import { pushApi } from './push-api.js';
import { ffmpegSource, folderSource, isStreamUrl, type FrameSource } from './sources.js';
import { IngestStage } from './stage.js';
import { SourceSupervisor } from './supervisor.js';

const pair = (sep: string) =>
  parsers.list((raw: string) => {
    const i = raw.indexOf(sep);
    if (i <= 0 || i === raw.length - 1) throw new Error(`must be camera${sep}value`);
    return [raw.slice(0, i).trim(), raw.slice(i + 1).trim()] as [string, string];
  }, { min: 0 });

export const ingestConfig = defineConfig({
  ...baseConfigFields,
  ...serviceConfigFields,
  sources: field({ env: 'FACEFLOW_INGEST_SOURCES', default: [] as [string, string][], parse: pair('='), doc: 'sources to pull, camera=url-or-path, comma-separated' }),
  fps: field({ env: 'FACEFLOW_INGEST_FPS', default: 5, parse: parsers.number({ min: 0.1, max: 120 }), doc: 'frame-rate cap per camera' }),
  maxWidth: field({ env: 'FACEFLOW_INGEST_MAX_WIDTH', default: 1280, parse: parsers.int({ min: 0, max: 16384 }), doc: 'frames wider than this are scaled down (0: never)' }),
  apiKeys: field({ env: 'FACEFLOW_INGEST_API_KEYS', default: [] as [string, string][], parse: pair(':'), secret: true, doc: 'push API keys, camera:sha256hex, comma-separated' }),
  maxBytes: field({ env: 'FACEFLOW_INGEST_MAX_BYTES', default: 8 * 1024 * 1024, parse: parsers.int({ min: 1024 }), doc: 'largest pushed frame, bytes' }),
  maxPixels: field({ env: 'FACEFLOW_INGEST_MAX_PIXELS', default: MAX_IMAGE_PIXELS, parse: parsers.int({ min: 1 }), doc: "largest width x height a pushed frame's header may declare (413 over it; the engine's limit)" }),
  pushTimeoutMs: field({ env: 'FACEFLOW_INGEST_PUSH_TIMEOUT', default: 3000, parse: parsers.durationMs({ min: 10, max: 60_000 }), doc: 'how long a push waits for Kafka before it is refused with 503 + Retry-After' }),
  sourceRetryMaxMs: field({ env: 'FACEFLOW_INGEST_SOURCE_RETRY_MAX', default: 30_000, parse: parsers.durationMs({ min: 100, max: 3_600_000 }), doc: 'longest wait before a failed pull source is opened again (backoff from 1 s)' }),
  maxInFlight: field({ env: 'FACEFLOW_INGEST_MAX_IN_FLIGHT', default: 64, parse: parsers.int({ min: 1 }), doc: 'pushed frames waiting for Kafka before 429' }),
  maxQueue: field({ env: 'FACEFLOW_INGEST_MAX_QUEUE', default: 4, parse: parsers.int({ min: 1 }), doc: 'frames queued per live camera (older ones are dropped)' }),
  maxAgeMs: field({ env: 'FACEFLOW_INGEST_MAX_AGE', default: 2000, parse: parsers.durationMs({ min: 1 }), doc: 'a live frame older than this is dropped' }),
}, [
  { envs: ['FACEFLOW_INGEST_API_KEYS'], check: (c) => c.apiKeys.find(([, d]) => !/^[0-9a-f]{64}$/.test(d)) ? 'each key must be a hex SHA-256 digest (64 characters)' : undefined },
]);

async function main(): Promise<void> {
  const config = ingestConfig.load();
  const logger = createLogger({ level: config.logLevel, bindings: { service: 'ingest' } });
  const metrics = createMetrics({ collectDefault: true, defaultLabels: { service: 'ingest' } });
  const topics = topicNames(config.topicPrefix);
  const bus = new KafkaBus({ ...kafkaConnectionOf(config), clientId: 'faceflow-ingest', logger, metrics });
  await bus.createTopics([topics.frames, topics.framesDlq].map((topic) => ({ topic, partitions: config.partitions })));
  const health = new HealthMonitor({ dependencies: [{ name: 'kafka', check: () => bus.ping() }], logger, metrics });
  await health.start();
  const stage = new IngestStage({
    available: () => health.ok,
    pushTimeoutMs: config.pushTimeoutMs,
    publish: (t, m) => bus.publish(t, m),
    framesTopic: topics.frames,
    maxQueue: config.maxQueue,
    maxAgeMs: config.maxAgeMs,
    maxInFlight: config.maxInFlight,
    metrics,
    logger,
  });
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
      const results = await Promise.allSettled([bus.close({ graceMs: config.graceMs })]);
      results.push(...(await Promise.allSettled([ops.close()])));
      const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) throw failed.reason;
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
