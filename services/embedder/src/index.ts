/** @faceflow/embedder: the embedder stage, its configuration and `createStage` (the service itself is main.ts). */
export * from './config.js';
export * from './create-stage.js';
export * from './stage.js';
export * from './batcher.js';
export * from './crops.js';
export * from './scheduler.js';
