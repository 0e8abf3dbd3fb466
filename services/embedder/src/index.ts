/** @faceflow/embedder: the embedder stage (the service itself is main.ts). */
export * from './stage.js';
export * from './batcher.js';
export * from './crops.js';
export * from './scheduler.js';
