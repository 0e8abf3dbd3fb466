export * from './types.js';
export * from './memory-gallery-store.js';
export * from './file-gallery-store.js';
export * from './gallery-admin.js';
export * from './gallery-crypto.js';
export * from './erasure.js';
