/** @faceflow/matcher: the matcher stage, its tracker, gallery cache, configuration and `createStage` (the service itself is main.ts). */
export * from './stage.js';
export * from './tracker.js';
export * from './gallery-cache.js';
export * from './config.js';
export * from './create-stage.js';
export * from './clusters-api.js';
