export * from './errors.js';
export * from './config.js';
export * from './topics.js';
export * from './logger.js';
export * from './metrics.js';
export * from './schemas/index.js';
export * from './bus/index.js';
export * from './gallery-store/index.js';
