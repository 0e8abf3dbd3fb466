/**
 * What every service's main.ts shares: the common config fields, and a two-phase shutdown on
 * SIGINT/SIGTERM (the first signal runs `stop` -- stop intake, drain within the grace period, close --, a
 * second one, or `stop` outliving `graceMs` + 5 s, exits at once).
 */
import { field, parsers } from './config.js';
import type { Logger } from './observability.js';

export const serviceConfigFields = {
  httpPort: field({ env: 'FACEFLOW_HTTP_PORT', default: 8080, parse: parsers.int({ min: 0, max: 65535 }), doc: 'port of /metrics, /livez (/healthz), /readyz (and the service API)' }),
  httpHost: field({ env: 'FACEFLOW_HTTP_HOST', default: '0.0.0.0', parse: parsers.string({ max: 255 }), doc: 'address the HTTP server binds' }),
  partitions: field({ env: 'FACEFLOW_TOPIC_PARTITIONS', default: 4, parse: parsers.int({ min: 1, max: 1024 }), doc: 'partitions of the topics a service creates when they do not exist' }),
  graceMs: field({ env: 'FACEFLOW_GRACE_MS', default: 10_000, parse: parsers.durationMs({ min: 0, max: 600_000 }), doc: 'shutdown: time to drain in-flight work before forcing' }),
};

export function onShutdown(stop: (signal: string) => Promise<void>, logger: Logger, graceMs: number): void {
  let stopping = false;
  const handler = (signal: string): void => {
    if (stopping) {
      logger.warn('second signal: exiting now', { signal });
      process.exit(1);
    }
    stopping = true;
    logger.info('stopping: no new work, draining', { signal, graceMs });
    const killer = setTimeout(() => {
      logger.error('shutdown took too long: exiting', { graceMs });
      process.exit(1);
    }, graceMs + 5000);
    killer.unref();
    stop(signal).then(
      () => {
        logger.info('stopped');
        process.exit(0);
      },
      (e: unknown) => {
        logger.error('shutdown failed', { err: e });
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => handler('SIGINT'));
  process.on('SIGTERM', () => handler('SIGTERM'));
}
