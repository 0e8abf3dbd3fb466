export * from './geometry.js';
export * from './image.js';
export * from './degrade.js';
export * from './output.js';
