export * from './validate.js';
export * from './codec.js';
export * from './frame.js';
export * from './face.js';
export * from './match.js';
export * from './identity-event.js';
export * from './gallery-change.js';
export * from './audit-event.js';
