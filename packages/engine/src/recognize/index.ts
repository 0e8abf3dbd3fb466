export * from './align.js';
export * from './engine.js';
export * from './pool.js';
export * from './quality.js';
export * from './analysis.js';
export * from './largest-face.js';
export * from './runner.js';
