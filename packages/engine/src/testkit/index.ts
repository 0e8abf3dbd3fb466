export * from './failure.testkit.js';
