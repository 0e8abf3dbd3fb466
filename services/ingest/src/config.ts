/**
 * The ingest service's configuration (environment variables, checked at start-up, every problem reported at
 * once naming its variable). `faceflow run` derives its flags from the same fields (issue 13 step 4).
 */
import { baseConfigFields, defineConfig, field, MAX_IMAGE_PIXELS, parsers, serviceConfigFields, type ConfigOf } from '@faceflow/shared';

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

export type IngestConfig = ConfigOf<typeof ingestConfig.fields>;
