/** @faceflow/ingest: the ingest stage, its sources, configuration and `createStage` (the service itself is main.ts). */
export * from './stage.js';
export * from './sources.js';
export * from './open-source.js';
export * from './supervisor.js';
export * from './config.js';
export * from './create-stage.js';
