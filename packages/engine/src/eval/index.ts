export * from './lfw.js';
export * from './detection.js';
export * from './segmentation.js';
