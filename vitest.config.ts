import { defineConfig } from 'vitest/config';

// GPU tests run in child processes (dawn.node is a native addon; threads would share one instance badly) and
// one file at a time: lavapipe already uses every core, and parallel files only slow each other down.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 120_000,
    teardownTimeout: 10_000,
    reporters: ['default', './test/helpers/summary-reporter.ts'],
  },
});
