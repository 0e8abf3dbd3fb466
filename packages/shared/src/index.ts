/**
 * @faceflow/shared: the contracts and the plumbing, no third-party import (checked by test/architecture.test.ts).
 * Adapters sit behind subpaths: /ops (logger, metrics, HTTP ops server, health), /kafka, /redis.
 */
export * from './geometry.js';
export * from './errors.js';
export * from './config.js';
export * from './topics.js';
export * from './observability.js';
export * from './schemas/index.js';
export * from './bus/index.js';
export * from './gallery-store/index.js';
export * from './service.js';
export * from './crop-store.js';
export * from './image-header.js';
export * from './close-all.js';
export * from './audit.js';
