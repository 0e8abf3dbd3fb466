/** @faceflow/alerts: the alerts stage, its configuration and `createStage` (the service itself is main.ts). */
export * from './stage.js';
export * from './config.js';
export * from './create-stage.js';
