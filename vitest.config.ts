import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['packages/*/src/**/*.test.ts', 'test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Sandboxes are real processes; two workers match the two cores here.
    maxWorkers: 2,
    reporters: process.env.CI ? ['default'] : ['default'],
  },
});
