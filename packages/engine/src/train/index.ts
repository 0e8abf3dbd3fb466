export * from './rng.js';
export * from './augment.js';
export * from './mining.js';
export * from './head.js';
export * from './trainer.js';
export * from './dataset.js';
export * from './embed-set.js';
export * from './plot.js';
