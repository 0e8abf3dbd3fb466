/** @faceflow/alerts: the alerts stage (the service itself is main.ts). */
export * from './stage.js';
