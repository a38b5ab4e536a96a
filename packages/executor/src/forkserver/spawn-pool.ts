// spawn-pool.ts: the spawn pool's API (native/forkserver/pool.h does the work). The global
// forkserver keeps `size` sandboxes prepared ahead of demand (namespaces, id maps, mount tree,
// pivot_root) for the layout of the last request; a request with that layout only applies what
// varies and execs. A one-shot process gains nothing: the pool pays off in a long-lived one.
import { availableParallelism } from 'node:os';
import { POOL_SIZE_MAX } from './protocol.js';
import { ForkServer } from './global.js';

export interface SpawnPoolOptions {
  /** Slots kept ready: a number 0..64 (0 turns the pool off) or 'auto' (sized for the host). */
  size: number | 'auto';
}

export interface SpawnPoolStats {
  /** Slots wanted. */
  size: number;
  /** Slots ready for a request of the current layout. */
  ready: number;
  /** Slots cloned and still building their mount tree. */
  preparing: number;
  /** Requests served by a slot. */
  hits: number;
  /** Requests served on demand while the pool was on (another layout, or no slot ready). */
  misses: number;
  /** Slots killed unused (the layout changed, the size shrank). */
  recycled: number;
  /** Slots cloned so far. */
  prepared: number;
  /** Slots that failed their setup (the pool stops refilling that layout; requests go on demand). */
  failures: number;
  /** The last such failure ('' if none). */
  lastError: string;
}

export class SpawnPoolError extends Error {
  readonly code = 'INVALID_POOL_SIZE';
  constructor(message: string) {
    super(message);
    this.name = 'SpawnPoolError';
  }
}

/** 'auto': two slots per CPU, between 2 and 8 (a deeper pool only absorbs longer bursts). */
export function autoPoolSize(): number {
  return Math.min(8, Math.max(2, 2 * availableParallelism()));
}

function resolveSize(size: unknown, where: string): number {
  if (size === 'auto') return autoPoolSize();
  if (typeof size === 'number' && Number.isInteger(size) && size >= 0 && size <= POOL_SIZE_MAX) return size;
  throw new SpawnPoolError(`${where}: pool size must be an integer 0..${POOL_SIZE_MAX} or 'auto', got ${JSON.stringify(size)}`);
}

/** Default: SBX_SPAWN_POOL (a size or 'auto'), else off. */
function fromEnv(): number {
  const v = process.env.SBX_SPAWN_POOL;
  if (v === undefined || v === '') return 0;
  if (v !== 'auto' && !/^\d+$/.test(v)) throw new SpawnPoolError(`SBX_SPAWN_POOL: pool size must be an integer 0..${POOL_SIZE_MAX} or 'auto', got ${JSON.stringify(v)}`);
  return resolveSize(v === 'auto' ? 'auto' : Number(v), 'SBX_SPAWN_POOL');
}

let configured: number | null = null;

/** @internal the size a (re)started forkserver is given. */
export function poolSize(): number {
  configured ??= fromEnv();
  return configured;
}

/**
 * Sets how many sandboxes the global forkserver keeps prepared ahead of demand. Takes effect
 * at once (a running forkserver starts filling or drops slots) and for a forkserver started
 * later. The slots warm for the layout of the most recent request (mount tree, namespaces,
 * hostname, ids); requests with another layout are served on demand and switch the pool to it.
 */
export function setSpawnPool(options: SpawnPoolOptions): void {
  if (options === null || typeof options !== 'object') throw new SpawnPoolError('setSpawnPool: expected { size }');
  configured = resolveSize(options.size, 'setSpawnPool');
  ForkServer.running()?.setPool(configured);
}

const OFF: SpawnPoolStats = { size: 0, ready: 0, preparing: 0, hits: 0, misses: 0, recycled: 0, prepared: 0, failures: 0, lastError: '' };

/** The pool's counters, from the forkserver (all zero, with `size` as configured, before it has started). */
export async function spawnPoolStats(): Promise<SpawnPoolStats> {
  const fs = ForkServer.running();
  if (!fs) return { ...OFF, size: poolSize() };
  return fs.poolStats();
}

/** @internal SBX_FS_POOL_STATS payload (protocol.h). */
export function decodePoolStats(d: Buffer): SpawnPoolStats {
  return {
    size: d.readUInt32LE(0),
    ready: d.readUInt32LE(4),
    preparing: d.readUInt32LE(8),
    failures: d.readUInt32LE(12),
    hits: Number(d.readBigUInt64LE(16)),
    misses: Number(d.readBigUInt64LE(24)),
    recycled: Number(d.readBigUInt64LE(32)),
    prepared: Number(d.readBigUInt64LE(40)),
    lastError: d.subarray(48).toString('utf8'),
  };
}
