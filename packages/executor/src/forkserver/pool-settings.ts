// pool-settings.ts: the spawn pool's size (setSpawnPool, SBX_SPAWN_POOL) and counters, as the global
// forkserver link needs them: no import of the link itself, so the link and the pool API
// (spawn-pool.ts, which drives the running link) stay acyclic.
import { availableParallelism } from 'node:os';
import { POOL_SIZE_MAX } from './protocol.js';
import { SbxError } from '@sbx/client';

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

export class SpawnPoolError extends SbxError {
  declare readonly code: 'INVALID_POOL_SIZE';
  constructor(message: string) {
    super('INVALID_POOL_SIZE', message);
  }
}

/** 'auto': two slots per CPU, between 2 and 8 (a deeper pool only absorbs longer bursts). */
export function autoPoolSize(): number {
  return Math.min(8, Math.max(2, 2 * availableParallelism()));
}

function resolveSize(size: unknown, where: string): number {
  if (size === 'auto') return autoPoolSize();
  if (typeof size === 'number' && Number.isInteger(size) && size >= 0 && size <= POOL_SIZE_MAX) return size;
  throw new SpawnPoolError(
    `${where}: pool size must be an integer 0..${POOL_SIZE_MAX} or 'auto', got ${JSON.stringify(size)}`,
  );
}

/** Default: SBX_SPAWN_POOL (a size or 'auto'), else off. */
function fromEnv(): number {
  const v = process.env.SBX_SPAWN_POOL;
  if (v === undefined || v === '') return 0;
  if (v !== 'auto' && !/^\d+$/.test(v))
    throw new SpawnPoolError(
      `SBX_SPAWN_POOL: pool size must be an integer 0..${POOL_SIZE_MAX} or 'auto', got ${JSON.stringify(v)}`,
    );
  return resolveSize(v === 'auto' ? 'auto' : Number(v), 'SBX_SPAWN_POOL');
}

let configured: number | null = null;

/** @internal setSpawnPool's validated size. */
export function configurePoolSize(size: unknown, where: string): number {
  configured = resolveSize(size, where);
  return configured;
}

/** @internal the size a (re)started forkserver is given. */
export function poolSize(): number {
  configured ??= fromEnv();
  return configured;
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
