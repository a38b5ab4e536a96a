// limits.ts: resource limits of a sandboxee. Defaults are Sandbox2's.

/** RLIM_INFINITY as a bigint. */
export const INFINITY = 0xffffffffffffffffn;

export interface LimitsOptions {
  /** RLIMIT_AS in bytes (default: unlimited). */
  rlimitAs?: number | bigint;
  /** RLIMIT_CPU in seconds (default 1024). */
  rlimitCpu?: number | bigint;
  /** RLIMIT_FSIZE in bytes (default 8 GiB). */
  rlimitFsize?: number | bigint;
  /** RLIMIT_NOFILE (default 1024). */
  rlimitNofile?: number | bigint;
  /** RLIMIT_NPROC (default: unlimited). Since Linux 5.14 it counts the processes of the sandbox's
   *  own user namespace, so it bounds a fork bomb without touching the host uid's other processes. */
  rlimitNproc?: number | bigint;
  /** RLIMIT_CORE in bytes (default 0: no core files). */
  rlimitCore?: number | bigint;
  /** Wall-time limit in seconds; 0 disarms it (default 120). */
  walltime?: number;
  /**
   * Memory of the whole sandbox in bytes, through its cgroup v2 (memory.max, with no swap and the
   * whole tree killed together on OOM). Unlike rlimitAs it counts memory used, not address space
   * reserved, so node and Workers start under it. Needs the memory controller in the delegated
   * cgroup (`sbx doctor` tells); where it is missing the Result is a SETUP_ERROR naming it.
   */
  memory?: number | bigint;
  /** Number of processes and threads in the whole sandbox, through its cgroup v2 (pids.max).
   *  Needs the pids controller, as `memory` needs the memory controller. */
  pids?: number | bigint;
}

/** Linux RLIMIT_* numbers. */
export const RLIMIT = { CPU: 0, FSIZE: 1, CORE: 4, NPROC: 6, NOFILE: 7, AS: 9 } as const;

export class Limits {
  rlimitAs: bigint = INFINITY;
  rlimitCpu: bigint = 1024n;
  rlimitFsize: bigint = 8n << 30n;
  rlimitNofile: bigint = 1024n;
  rlimitNproc: bigint = INFINITY;
  rlimitCore: bigint = 0n;
  walltime = 120;
  /** cgroup memory.max in bytes (null: no cgroup limit). */
  memory: bigint | null = null;
  /** cgroup pids.max (null: no cgroup limit). */
  pids: bigint | null = null;

  constructor(options: LimitsOptions = {}) {
    for (const [key, value] of Object.entries(options)) {
      if (value === undefined) continue;
      if (key === 'walltime') {
        if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
          throw new TypeError(`limits.walltime must be a finite number of seconds >= 0, got ${String(value)}`);
        }
        this.walltime = value;
      } else if (key === 'memory' || key === 'pids') {
        const v = toRlimit(key, value);
        if (v === INFINITY) continue;
        if (v === 0n || (key === 'memory' && v < 1n << 20n)) throw new TypeError(`limits.${key} must be at least ${key === 'memory' ? '1 MiB (in bytes)' : '1'}, got ${String(value)}`);
        this[key] = v;
      } else if (key in RLIMIT_KEYS) {
        (this as unknown as Record<string, bigint>)[key] = toRlimit(key, value);
      } else {
        throw new TypeError(`limits: unknown option "${key}" (known: ${[...Object.keys(RLIMIT_KEYS), 'walltime', 'memory', 'pids'].join(', ')})`);
      }
    }
  }

  /** [resource, soft, hard] triples (soft = hard) for the forkserver. */
  rlimits(): Array<[number, bigint]> {
    return [
      [RLIMIT.AS, this.rlimitAs],
      [RLIMIT.CPU, this.rlimitCpu],
      [RLIMIT.FSIZE, this.rlimitFsize],
      [RLIMIT.NOFILE, this.rlimitNofile],
      [RLIMIT.NPROC, this.rlimitNproc],
      [RLIMIT.CORE, this.rlimitCore],
    ];
  }
}

const RLIMIT_KEYS = { rlimitAs: 1, rlimitCpu: 1, rlimitFsize: 1, rlimitNofile: 1, rlimitNproc: 1, rlimitCore: 1 };

function toRlimit(key: string, v: unknown): bigint {
  if (v === Infinity || v === 'infinity' || v === 'unlimited') return INFINITY;
  if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) return BigInt(v);
  if (typeof v === 'bigint' && v >= 0n && v <= INFINITY) return v;
  throw new TypeError(`limits.${key} must be a non-negative integer (or Infinity), got ${String(v)}`);
}
