export * from './types.js';
export * from './retry.js';
export * from './dead-letter.js';
export * from './instrument.js';
export * from './in-process-bus.js';
export * from './stage.js';
export * from './outbox.js';
