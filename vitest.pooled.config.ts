// The isolation and violation suites again (namespaces and landlock isolation), each sandbox served by a spawn-pool slot where its
// layout matches (SBX_SPAWN_POOL=4): pooled and on-demand sandboxes must behave the same.
import { defineConfig } from 'vitest/config';

process.env.SBX_SPAWN_POOL ??= '4';

export default defineConfig({
  test: {
    include: [
      'test/executor.test.ts',
      'test/escape/**/*.test.ts',
      'test/landlock.test.ts',
      'test/landlock-isolation.test.ts',
      'test/network.test.ts',
      'test/run.test.ts',
      'test/notify.test.ts',
      'test/long-lived.test.ts',
    ],
    // These run the CLI in child processes (each its own executor and pool): nothing to hit here.
    exclude: ['test/escape/ipc.test.ts', 'test/escape/priority.test.ts'],
    setupFiles: ['test/pooled-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    maxWorkers: 2,
  },
});
