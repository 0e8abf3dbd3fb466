export * from './detector.js';
export * from './yunet.js';
export * from './landmarks.js';
export * from './embedder.js';
export * from './graph-embedder.js';
export * from './sface.js';
export * from './facemesh.js';
export * from './head.js';
