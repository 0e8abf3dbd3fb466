export * from './lfw.js';
export * from './detection.js';
export * from './segmentation.js';
export * from './segmentation-run.js';
export * from './far.js';
export * from './rng.js';
export * from './lfw-run.js';
export * from './detection-run.js';
export type { EvalRunner, EvalProgress } from './runner.js';
