export * from './types.js';
export { BUILTIN_MODELS } from './models.js';
export * from './registry.js';
export * from './model-status.js';
