import { defineConfig } from 'vitest/config';
import { fileURLToPath } from 'node:url';

const src = (p: string) => fileURLToPath(new URL(p, import.meta.url));

export default defineConfig({
  resolve: {
    alias: [
      { find: /^@faceflow\/shared$/, replacement: src('./packages/shared/src/index.ts') },
      { find: /^@faceflow\/shared\/(kafka|redis|ops|pipeline)$/, replacement: src('./packages/shared/src/$1.ts') },
      { find: /^@faceflow\/shared\/media$/, replacement: src('./packages/shared/src/media/index.ts') },
      { find: /^@faceflow\/engine$/, replacement: src('./packages/engine/src/index.ts') },
      { find: /^@faceflow\/engine\/(image|recognize|match|segment|redact|models|runtime|registry|search|eval|train)$/, replacement: src('./packages/engine/src/$1/index.ts') },
      { find: /^@faceflow\/(ingest|embedder|matcher|alerts)$/, replacement: src('./services/$1/src/index.ts') },
      { find: /^@faceflow\/bench\/spawn$/, replacement: src('./bench/src/spawn.ts') },
    ],
  },
  test: {
    include: ['packages/*/src/**/*.test.ts', 'packages/*/test/**/*.test.ts', 'services/*/src/**/*.test.ts', 'services/*/test/**/*.test.ts', 'test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 180_000,
    // model tests are CPU-heavy; two cores, so run files one or two at a time
    fileParallelism: true,
    maxWorkers: 2,
    pool: 'forks',
  },
});
