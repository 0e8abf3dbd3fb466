/**
 * `@faceflow/shared/redis`: the Redis gallery store, kept out of the package root so that code which only
 * needs the contracts (the engine, the one-process mode) never loads ioredis.
 */
export * from './gallery-store/redis-gallery-store.js';
