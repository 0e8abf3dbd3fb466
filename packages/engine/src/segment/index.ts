export * from './mask.js';
export * from './segment.js';
export * from './skin-classifier.js';
