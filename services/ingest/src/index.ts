/** @faceflow/ingest: the ingest stage and its sources (the service itself is main.ts). */
export * from './stage.js';
export * from './sources.js';
export * from './supervisor.js';
