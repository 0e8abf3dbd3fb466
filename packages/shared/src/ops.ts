/**
 * `@faceflow/shared/ops`: what a process needs to be operated, kept out of the package root so that the
 * contracts import no third-party code (issue 13 step 5): the JSON-lines logger, metrics over prom-client,
 * the HTTP ops server (/metrics, /livez, /readyz, node:http) and the dependency health monitor.
 */
export * from './logger.js';
export * from './metrics.js';
export * from './ops-server.js';
export * from './health.js';
export * from './gallery-api.js';
export * from './clusters-client.js';
