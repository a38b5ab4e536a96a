// Setup of the pooled pass (vitest.pooled.config.ts): the same suites with SBX_SPAWN_POOL set. A
// pass in which no request was served by a slot would prove nothing: each file must see hits.
import { afterAll, expect } from 'vitest';
import { spawnPoolStats } from '@sbx/executor';

afterAll(async () => {
  const stats = await spawnPoolStats();
  expect(stats.size, 'SBX_SPAWN_POOL is not set for the pooled pass').toBeGreaterThan(0);
  expect(stats.hits, `no request of this file was served by a pool slot: ${JSON.stringify(stats)}`).toBeGreaterThan(0);
  console.log(`spawn pool: ${JSON.stringify(stats)}`);
});
