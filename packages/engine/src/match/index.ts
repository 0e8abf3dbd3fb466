export * from './gallery.js';
export * from './decide.js';
export * from './calibration.js';
