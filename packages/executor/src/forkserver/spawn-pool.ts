// spawn-pool.ts: the spawn pool's API (native/forkserver/pool.h does the work). The global
// forkserver keeps `size` sandboxes prepared ahead of demand (namespaces, id maps, mount tree,
// pivot_root) for the layout of the last request; a request with that layout only applies what
// varies and execs. A one-shot process gains nothing: the pool pays off in a long-lived one.
import { ForkServer } from './global.js';
import {
  configurePoolSize,
  poolSize,
  SpawnPoolError,
  type SpawnPoolOptions,
  type SpawnPoolStats,
} from './pool-settings.js';

export { autoPoolSize, SpawnPoolError, type SpawnPoolOptions, type SpawnPoolStats } from './pool-settings.js';

/**
 * Sets how many sandboxes the global forkserver keeps prepared ahead of demand. Takes effect
 * at once (a running forkserver starts filling or drops slots) and for a forkserver started
 * later. The slots warm for the layout of the most recent request (mount tree, namespaces,
 * hostname, ids); requests with another layout are served on demand and switch the pool to it.
 */
export function setSpawnPool(options: SpawnPoolOptions): void {
  if (options === null || typeof options !== 'object') throw new SpawnPoolError('setSpawnPool: expected { size }');
  const size = configurePoolSize(options.size, 'setSpawnPool');
  ForkServer.running()?.setPool(size);
}

const OFF: SpawnPoolStats = {
  size: 0,
  ready: 0,
  preparing: 0,
  hits: 0,
  misses: 0,
  recycled: 0,
  prepared: 0,
  failures: 0,
  lastError: '',
};

/** The pool's counters, from the forkserver (all zero, with `size` as configured, before it has started). */
export async function spawnPoolStats(): Promise<SpawnPoolStats> {
  const fs = ForkServer.running();
  if (!fs) return { ...OFF, size: poolSize() };
  return fs.poolStats();
}
