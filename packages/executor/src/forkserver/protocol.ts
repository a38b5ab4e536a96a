// forkserver-protocol.ts: the executor's side of native/forkserver/protocol.h (keep them equal).
// A spawn request is an op list: TLVs in the Comms format, built here, parsed by the forkserver.
import { HEADER_SIZE } from '@sbx/client';

export const FS_COMMS_FD = 3;
export const FsTag = {
  Spawn: 0x00005301,
  Spawned: 0x00005302,
  Exited: 0x00005303,
  InitStatus: 0x00005304,
  Pool: 0x00005305,
  PoolStats: 0x00005306,
  SlotReady: 0x00005307,
  SetupFailed: 0x00005308,
  SetupTrace: 0x00005309,
  SetWalltime: 0x0000530a,
} as const;

/**
 * The steps from a request to execveat (enum sbx_step): a failure report names its step by
 * number, with its errno and flags, so that its kind is decided from data, never from the text.
 */
export const SetupStep = {
  None: 0,
  Request: 1,
  OpenExec: 2,
  Cgroup: 3,
  Clone: 4,
  IdMap: 5,
  Release: 6,
  Setsid: 7,
  Ids: 8,
  Pdeathsig: 9,
  UserLimits: 10,
  Mount: 11,
  Hostname: 12,
  Network: 13,
  Cwd: 14,
  Fds: 15,
  Signals: 16,
  Init: 17,
  Rlimits: 18,
  Capabilities: 19,
  Landlock: 20,
  Seccomp: 21,
  Exec: 22,
  Pool: 23,
} as const;
export type SetupStepNumber = (typeof SetupStep)[keyof typeof SetupStep];
/** SBX_FAILURE_*: Path, a path the request names could not be looked up (not the host refusing). */
export const FailureFlag = { Path: 1 } as const;

/** A failed setup step, as the forkserver (SPAWNED) or the child (SETUP_FAILED) reports it. */
export interface SetupFailure {
  /** SetupStep */
  step: number;
  /** The positive errno of the failed call (0: none). */
  errno: number;
  /** FailureFlag bits. */
  flags: number;
  /** "step: call(args): strerror", for people. */
  message: string;
}

/** SETUP_FAILED: u32 step | i32 errno | u32 flags | message. */
export const SETUP_FAILED_HEADER = 12;

/** Decodes a SETUP_FAILED payload (at least SETUP_FAILED_HEADER bytes). */
export function decodeSetupFailure(d: Buffer): SetupFailure {
  return {
    step: d.readUInt32LE(0),
    errno: d.readInt32LE(4),
    flags: d.readUInt32LE(8),
    message: d.subarray(SETUP_FAILED_HEADER).toString('utf8'),
  };
}
/** A step's name as failure messages and the trace print it (sbx_step_name in child.c). */
export const SETUP_STEP_NAMES: Readonly<Record<number, string>> = {
  [SetupStep.Request]: 'request',
  [SetupStep.OpenExec]: 'open',
  [SetupStep.Cgroup]: 'cgroup',
  [SetupStep.Clone]: 'clone',
  [SetupStep.IdMap]: 'user namespace',
  [SetupStep.Release]: 'release',
  [SetupStep.Setsid]: 'setsid',
  [SetupStep.Ids]: 'ids',
  [SetupStep.Pdeathsig]: 'pdeathsig',
  [SetupStep.UserLimits]: 'user namespace limits',
  [SetupStep.Mount]: 'mount',
  [SetupStep.Hostname]: 'hostname',
  [SetupStep.Network]: 'network',
  [SetupStep.Cwd]: 'cwd',
  [SetupStep.Fds]: 'fds',
  [SetupStep.Signals]: 'signals',
  [SetupStep.Init]: 'init',
  [SetupStep.Rlimits]: 'rlimits',
  [SetupStep.Capabilities]: 'capabilities',
  [SetupStep.Landlock]: 'landlock',
  [SetupStep.Seccomp]: 'seccomp',
  [SetupStep.Exec]: 'exec',
  [SetupStep.Pool]: 'pool',
};

/** SETUP_TRACE entries: u32 step | u32 0 | u64 CLOCK_MONOTONIC ns at the step's end. */
export const TRACE_ENTRY_SIZE = 16;

/** Decodes a SETUP_TRACE payload; null when it is not a whole number of entries. */
export function decodeTrace(d: Buffer): { step: number; ns: bigint }[] | null {
  if (d.length % TRACE_ENTRY_SIZE !== 0) return null;
  const out: { step: number; ns: bigint }[] = [];
  for (let off = 0; off < d.length; off += TRACE_ENTRY_SIZE)
    out.push({ step: d.readUInt32LE(off), ns: d.readBigUInt64LE(off + 8) });
  return out;
}

/** The forkserver watches at most this many slots (SBX_POOL_POLL_MAX). */
export const POOL_SIZE_MAX = 64;
export const SETUP_FD_TARGET = 1021;
export const EXEC_FD_TARGET = 1022;
export const EXEC_MAGIC = 0x5b78ec00;

export const Op = {
  RequestId: 1,
  ExecPath: 2,
  Arg: 3,
  Env: 4,
  Cwd: 5,
  Namespaces: 6,
  Hostname: 7,
  IdMap: 8,
  Bind: 9,
  Tmpfs: 10,
  Proc: 11,
  Dev: 12,
  Mkdir: 13,
  Symlink: 14,
  Rlimit: 15,
  Seccomp: 16,
  SeccompFlags: 17,
  Fd: 18,
  SetupSocket: 19,
  Cgroup: 20,
  Landlock: 21,
  Walltime: 22,
  HostIds: 23,
  Reaper: 24,
  NoPool: 25,
  UserLimit: 26,
  Trace: 27,
} as const;

/** A file of /proc/sys/user that `limits.userNamespace` sets inside the sandbox's user namespace. */
export type UserLimitName =
  | 'max_user_namespaces'
  | 'max_pid_namespaces'
  | 'max_uts_namespaces'
  | 'max_ipc_namespaces'
  | 'max_net_namespaces'
  | 'max_mnt_namespaces'
  | 'max_cgroup_namespaces'
  | 'max_time_namespaces'
  | 'max_inotify_instances'
  | 'max_inotify_watches'
  | 'max_fanotify_groups'
  | 'max_fanotify_marks';

/** SBX_OP_USER_LIMIT indexes (protocol.h): the files of /proc/sys/user, by name. */
export const UserLimitIndex: Readonly<Record<UserLimitName, number>> = {
  max_user_namespaces: 0,
  max_pid_namespaces: 1,
  max_uts_namespaces: 2,
  max_ipc_namespaces: 3,
  max_net_namespaces: 4,
  max_mnt_namespaces: 5,
  max_cgroup_namespaces: 6,
  max_time_namespaces: 7,
  max_inotify_instances: 8,
  max_inotify_watches: 9,
  max_fanotify_groups: 10,
  max_fanotify_marks: 11,
};

/** EXITED flags. */
export const ExitedFlag = { Walltime: 1 } as const;

export const BindFlag = { Rw: 1, Dev: 2, Optional: 4 } as const;
export const SeccompFlag = { Listener: 1 } as const;
/** SBX_OP_LANDLOCK kinds (protocol.h). */
export const LandlockKind = { Config: 1, Path: 2 } as const;

export const CloneFlag = {
  NEWNS: 0x00020000,
  NEWCGROUP: 0x02000000,
  NEWUTS: 0x04000000,
  NEWIPC: 0x08000000,
  NEWUSER: 0x10000000,
  NEWPID: 0x20000000,
  NEWNET: 0x40000000,
} as const;

/** Builds an op list. Strings are UTF-8 without NUL (a NUL is refused here, before the forkserver sees it). */
export class OpList {
  private readonly parts: Buffer[] = [];
  /** fds to send after the list, in the order of the ops that consume them. */
  readonly fds: number[] = [];

  private push(op: number, payload: Buffer): this {
    const h = Buffer.allocUnsafe(HEADER_SIZE);
    h.writeUInt32LE(op, 0);
    h.writeBigUInt64LE(BigInt(payload.length), 4);
    this.parts.push(h, payload);
    return this;
  }

  u32(op: number, v: number): this {
    const b = Buffer.allocUnsafe(4);
    b.writeUInt32LE(v >>> 0);
    return this.push(op, b);
  }

  u64(op: number, v: bigint): this {
    const b = Buffer.allocUnsafe(8);
    b.writeBigUInt64LE(v);
    return this.push(op, b);
  }

  str(op: number, s: string): this {
    return this.push(op, strBytes(s));
  }

  raw(op: number, b: Buffer): this {
    return this.push(op, b);
  }

  /** Appends whole ops already encoded by another OpList's toBuffer() (ops that carry no fd). */
  encoded(b: Buffer): this {
    this.parts.push(b);
    return this;
  }

  /** u32 words followed by string fields: "u32 len | s1 | s2" style payloads. */
  words(op: number, words: number[], ...tail: Buffer[]): this {
    const head = Buffer.allocUnsafe(4 * words.length);
    words.forEach((w, i) => {
      head.writeUInt32LE(w >>> 0, 4 * i);
    });
    return this.push(op, Buffer.concat([head, ...tail]));
  }

  fd(target: number, fd: number): this {
    this.fds.push(fd);
    return this.u32(Op.Fd, target);
  }

  setupSocket(fd: number): this {
    this.fds.push(fd);
    return this.push(Op.SetupSocket, Buffer.alloc(0));
  }

  bind(src: string, dst: string, flags: number): this {
    const s = strBytes(src);
    return this.words(Op.Bind, [flags, s.length], s, strBytes(dst));
  }

  tmpfs(dst: string, sizeBytes: number, mode: number): this {
    const b = Buffer.allocUnsafe(12);
    b.writeBigUInt64LE(BigInt(sizeBytes), 0);
    b.writeUInt32LE(mode, 8);
    return this.push(Op.Tmpfs, Buffer.concat([b, strBytes(dst)]));
  }

  symlink(target: string, link: string): this {
    const t = strBytes(target);
    return this.words(Op.Symlink, [t.length], t, strBytes(link));
  }

  mkdir(path: string, mode: number): this {
    return this.words(Op.Mkdir, [mode], strBytes(path));
  }

  rlimit(resource: number, soft: bigint, hard: bigint): this {
    const b = Buffer.allocUnsafe(20);
    b.writeUInt32LE(resource, 0);
    b.writeBigUInt64LE(soft, 4);
    b.writeBigUInt64LE(hard, 12);
    return this.push(Op.Rlimit, b);
  }

  userLimit(index: number, value: number): this {
    const b = Buffer.allocUnsafe(12);
    b.writeUInt32LE(index, 0);
    b.writeBigUInt64LE(BigInt(value), 4);
    return this.push(Op.UserLimit, b);
  }

  /** LANDLOCK CONFIG: handled fs rights, handled net rights, scopes. */
  landlockConfig(fs: number, net: number, scoped: number): this {
    const b = Buffer.allocUnsafe(28);
    b.writeUInt32LE(LandlockKind.Config, 0);
    b.writeBigUInt64LE(BigInt(fs), 4);
    b.writeBigUInt64LE(BigInt(net), 12);
    b.writeBigUInt64LE(BigInt(scoped), 20);
    return this.push(Op.Landlock, b);
  }

  /** LANDLOCK PATH: a path inside the new root and the fs rights granted beneath it. */
  landlockPath(access: number, path: string): this {
    const b = Buffer.allocUnsafe(12);
    b.writeUInt32LE(LandlockKind.Path, 0);
    b.writeBigUInt64LE(BigInt(access), 4);
    return this.push(Op.Landlock, Buffer.concat([b, strBytes(path)]));
  }

  toBuffer(): Buffer {
    return Buffer.concat(this.parts);
  }
}

function strBytes(s: string): Buffer {
  if (s.includes('\0')) throw new TypeError(`a string passed to the sandbox contains a NUL byte: ${JSON.stringify(s)}`);
  return Buffer.from(s, 'utf8');
}
