export * from './redact.js';
export * from './shot-cut.js';
export * from './video.js';
export * from './redact-file.js';
