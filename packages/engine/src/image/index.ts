export * from './geometry.js';
export * from './image.js';
