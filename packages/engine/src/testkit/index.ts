export * from './failure.testkit.js';
export * from './fixtures.testkit.js';
export * from './rss.testkit.js';
