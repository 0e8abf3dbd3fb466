/** @faceflow/matcher: the matcher stage, its tracker and gallery cache (the service itself is main.ts). */
export * from './stage.js';
export * from './tracker.js';
export * from './gallery-cache.js';
