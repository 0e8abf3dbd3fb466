export * from './lfw.js';
export * from './detection.js';
export * from './segmentation.js';
export * from './segmentation-run.js';
export * from './far.js';
export * from './rng.js';
export * from './cluster.js';
