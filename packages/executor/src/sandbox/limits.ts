// limits.ts: resource limits of a sandboxee. Defaults are Sandbox2's, plus small per-user quotas
// (pending signals, POSIX message queue bytes, locked memory, and the /proc/sys/user counters):
// the kernel charges those up the chain of user namespaces to the uid that owns the sandbox's
// namespace, so without them one sandbox could use up a host uid's allowance (docs/security.md).
import { UserLimitIndex, type UserLimitName } from '../forkserver/protocol.js';

/** RLIM_INFINITY as a bigint. */
export const INFINITY = 0xffffffffffffffffn;

/**
 * One resource limit: a number (soft = hard, as Sandbox2's u64 setters) or { soft, hard } (its
 * rlimit64 form): the sandboxee may raise the soft value up to the hard one itself, never beyond.
 */
export type RlimitValue = number | bigint | { readonly soft: number | bigint; readonly hard: number | bigint };

/** The LimitsOptions keys that are resource limits. */
export type RlimitKey =
  | 'rlimitAs'
  | 'rlimitCpu'
  | 'rlimitFsize'
  | 'rlimitNofile'
  | 'rlimitNproc'
  | 'rlimitCore'
  | 'rlimitSigpending'
  | 'rlimitMsgqueue'
  | 'rlimitMemlock';

export interface LimitsOptions {
  /** RLIMIT_AS in bytes (default: unlimited). */
  rlimitAs?: RlimitValue;
  /** RLIMIT_CPU in seconds (default 1024). */
  rlimitCpu?: RlimitValue;
  /** RLIMIT_FSIZE in bytes (default 8 GiB; rlimitAs when that is given, since a file in a memfd or
   *  a tmpfs is memory that RLIMIT_AS does not count). */
  rlimitFsize?: RlimitValue;
  /** RLIMIT_NOFILE (default 1024). */
  rlimitNofile?: RlimitValue;
  /** RLIMIT_NPROC (default: unlimited). Since Linux 5.14 it counts the processes of the sandbox's
   *  own user namespace, so it bounds a fork bomb without touching the host uid's other processes. */
  rlimitNproc?: RlimitValue;
  /** RLIMIT_CORE in bytes (default 0: no core files). */
  rlimitCore?: RlimitValue;
  /** RLIMIT_SIGPENDING: signals queued at once by the whole sandbox (default 256). Queued signals
   *  are charged to the uid that owns the sandbox's user namespace as well. */
  rlimitSigpending?: RlimitValue;
  /** RLIMIT_MSGQUEUE in bytes of POSIX message queues (default 128 KiB: one queue of the default size). */
  rlimitMsgqueue?: RlimitValue;
  /** RLIMIT_MEMLOCK in bytes (default 64 KiB). */
  rlimitMemlock?: RlimitValue;
  /**
   * /proc/sys/user limits written inside the sandbox's user namespace (namespaces mode), merged
   * over the defaults: namespaces 0 (the filter denies creating them anyway; mount namespaces 8, for
   * the anonymous ones of the sandbox's own mount setup),
   * max_inotify_instances 32, max_inotify_watches 8192, max_fanotify_groups 8,
   * max_fanotify_marks 8192.
   */
  userNamespace?: Partial<Record<UserLimitName, number>>;
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
export const RLIMIT = {
  CPU: 0,
  FSIZE: 1,
  CORE: 4,
  NPROC: 6,
  NOFILE: 7,
  MEMLOCK: 8,
  AS: 9,
  SIGPENDING: 11,
  MSGQUEUE: 12,
} as const;

/** The /proc/sys/user defaults of a sandbox's user namespace. */
export const DEFAULT_USER_NAMESPACE_LIMITS: Readonly<Record<UserLimitName, number>> = Object.freeze({
  max_user_namespaces: 0,
  max_pid_namespaces: 0,
  max_uts_namespaces: 0,
  max_ipc_namespaces: 0,
  max_net_namespaces: 0,
  max_mnt_namespaces: 8, // the mount step's own fsmount/open_tree each make an anonymous mount namespace for a moment
  max_cgroup_namespaces: 0,
  max_time_namespaces: 0,
  max_inotify_instances: 32,
  max_inotify_watches: 8192,
  max_fanotify_groups: 8,
  max_fanotify_marks: 8192,
});

export class Limits {
  rlimitAs: bigint = INFINITY;
  rlimitCpu: bigint = 1024n;
  rlimitFsize: bigint = 8n << 30n;
  rlimitNofile: bigint = 1024n;
  rlimitNproc: bigint = INFINITY;
  rlimitCore: bigint = 0n;
  rlimitSigpending: bigint = 256n;
  rlimitMsgqueue: bigint = 128n << 10n;
  rlimitMemlock: bigint = 64n << 10n;
  /** Soft limits below their hard limit (the rlimitX fields above are the hard ones). */
  readonly soft: Partial<Record<RlimitKey, bigint>> = {};
  userNamespace: Record<UserLimitName, number> = { ...DEFAULT_USER_NAMESPACE_LIMITS };
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
      } else if (key === 'userNamespace') {
        this.userNamespace = { ...DEFAULT_USER_NAMESPACE_LIMITS, ...checkUserNamespace(value) };
      } else if (key === 'memory' || key === 'pids') {
        const v = toRlimit(key, value);
        if (v === INFINITY) continue;
        if (v === 0n || (key === 'memory' && v < 1n << 20n))
          throw new TypeError(
            `limits.${key} must be at least ${key === 'memory' ? '1 MiB (in bytes)' : '1'}, got ${String(value)}`,
          );
        this[key] = v;
      } else if (key in RLIMIT_KEYS) {
        const { soft, hard } = toSoftHard(key, value);
        (this as unknown as Record<string, bigint>)[key] = hard;
        if (soft !== hard) this.soft[key as RlimitKey] = soft;
      } else {
        throw new TypeError(
          `limits: unknown option "${key}" (known: ${[...Object.keys(RLIMIT_KEYS), 'userNamespace', 'walltime', 'memory', 'pids'].join(', ')})`,
        );
      }
    }
    // A memory bound also bounds each memfd and tmpfs file, unless a file size was given.
    if (options.rlimitAs !== undefined && options.rlimitFsize === undefined && this.rlimitAs < this.rlimitFsize) {
      this.rlimitFsize = this.rlimitAs;
      if (this.soft.rlimitAs !== undefined) this.soft.rlimitFsize = this.soft.rlimitAs;
    }
  }

  /** [resource, soft, hard] triples for the forkserver. */
  rlimits(): Array<[number, bigint, bigint]> {
    const pairs: Array<[number, RlimitKey]> = [
      [RLIMIT.AS, 'rlimitAs'],
      [RLIMIT.CPU, 'rlimitCpu'],
      [RLIMIT.FSIZE, 'rlimitFsize'],
      [RLIMIT.NOFILE, 'rlimitNofile'],
      [RLIMIT.NPROC, 'rlimitNproc'],
      [RLIMIT.CORE, 'rlimitCore'],
      [RLIMIT.SIGPENDING, 'rlimitSigpending'],
      [RLIMIT.MSGQUEUE, 'rlimitMsgqueue'],
      [RLIMIT.MEMLOCK, 'rlimitMemlock'],
    ];
    return pairs.map(([res, key]) => [res, this.soft[key] ?? this[key], this[key]]);
  }

  /** [SBX_USER_LIMIT_* index, value] pairs for the forkserver (namespaces mode). */
  userNamespaceLimits(): Array<[number, number]> {
    return Object.entries(this.userNamespace).map(([k, v]) => [UserLimitIndex[k as UserLimitName], v]);
  }
}

const RLIMIT_KEYS = {
  rlimitAs: 1,
  rlimitCpu: 1,
  rlimitFsize: 1,
  rlimitNofile: 1,
  rlimitNproc: 1,
  rlimitCore: 1,
  rlimitSigpending: 1,
  rlimitMsgqueue: 1,
  rlimitMemlock: 1,
};

function checkUserNamespace(v: unknown): Partial<Record<UserLimitName, number>> {
  if (v === null || typeof v !== 'object' || Array.isArray(v))
    throw new TypeError(`limits.userNamespace must be an object of /proc/sys/user names to numbers, got ${String(v)}`);
  for (const [k, n] of Object.entries(v)) {
    if (!(k in UserLimitIndex))
      throw new TypeError(
        `limits.userNamespace: unknown limit "${k}" (known: ${Object.keys(UserLimitIndex).join(', ')})`,
      );
    if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0 || n > 0x7fffffff)
      throw new TypeError(`limits.userNamespace.${k} must be an integer 0..2147483647, got ${String(n)}`);
  }
  return v as Partial<Record<UserLimitName, number>>;
}

function toSoftHard(key: string, v: unknown): { soft: bigint; hard: bigint } {
  if (v !== null && typeof v === 'object') {
    const { soft, hard } = v as { soft?: unknown; hard?: unknown };
    if (soft === undefined || hard === undefined)
      throw new TypeError(
        `limits.${key} must be a number or { soft, hard }, got an object without ${soft === undefined ? 'soft' : 'hard'}`,
      );
    const s = toRlimit(`${key}.soft`, soft);
    const h = toRlimit(`${key}.hard`, hard);
    if (s > h) throw new TypeError(`limits.${key}: soft (${s}) is above hard (${h})`);
    return { soft: s, hard: h };
  }
  const n = toRlimit(key, v);
  return { soft: n, hard: n };
}

function toRlimit(key: string, v: unknown): bigint {
  if (v === Infinity || v === 'infinity' || v === 'unlimited') return INFINITY;
  if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) return BigInt(v);
  if (typeof v === 'bigint' && v >= 0n && v <= INFINITY) return v;
  throw new TypeError(`limits.${key} must be a non-negative integer (or Infinity), got ${String(v)}`);
}
