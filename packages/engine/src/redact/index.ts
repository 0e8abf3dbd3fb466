export * from './redact.js';
export * from './shot-cut.js';
