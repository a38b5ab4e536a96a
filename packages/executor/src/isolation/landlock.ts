// landlock.ts: the policy's filesystem rules as a Landlock ruleset (SBX_OP_LANDLOCK), a second
// wall under the mount tree, with the scopes that keep signals and abstract unix sockets inside.
// The rules name paths inside the sandbox: the forkserver child opens them after pivot_root
// (symlinks resolve inside the new root, as the mounts do) and masks every right by the ABI the
// kernel offers.
import { posix } from 'node:path';
import { native } from '@sbx/client/internal';
import type { OpList } from '../forkserver/protocol.js';
import type { FsEntry } from './mounts.js';

/** LANDLOCK_ACCESS_FS_* (ABI 1..5). */
export const FsAccess = {
  EXECUTE: 1 << 0,
  WRITE_FILE: 1 << 1,
  READ_FILE: 1 << 2,
  READ_DIR: 1 << 3,
  REMOVE_DIR: 1 << 4,
  REMOVE_FILE: 1 << 5,
  MAKE_CHAR: 1 << 6,
  MAKE_DIR: 1 << 7,
  MAKE_REG: 1 << 8,
  MAKE_SOCK: 1 << 9,
  MAKE_FIFO: 1 << 10,
  MAKE_BLOCK: 1 << 11,
  MAKE_SYM: 1 << 12,
  REFER: 1 << 13,
  TRUNCATE: 1 << 14,
  IOCTL_DEV: 1 << 15,
} as const;
/** LANDLOCK_SCOPE_* (ABI 6). */
export const Scope = { ABSTRACT_UNIX_SOCKET: 1 << 0, SIGNAL: 1 << 1 } as const;

const A = FsAccess;
/** Every fs right up to ABI 7: all are handled, so whatever no rule grants is refused. */
export const ALL_FS = 0xffff;
const READ = A.READ_FILE | A.READ_DIR;
/** A read-only bind: read, list, execute (the mount tree does not mount binds noexec). */
const READ_ONLY = READ | A.EXECUTE;
/** A writable bind or tmpfs: everything but creating device nodes (nodev mounts anyway) and device ioctls. */
const READ_WRITE = ALL_FS & ~(A.MAKE_CHAR | A.MAKE_BLOCK | A.IOCTL_DEV);
/** A device node the policy names (writing a device is not a write to its filesystem: a
 *  read-only bind of /dev/null is writable, so the rule is too). */
const DEVICE = A.READ_FILE | A.WRITE_FILE | A.TRUNCATE | A.IOCTL_DEV;

export interface LandlockRule {
  path: string;
  access: number;
}

/**
 * The rules for a mount tree. `/` is listable (the directories the tree creates on the way to
 * its mounts). /proc is read-only: procfs is mounted read-write, but nothing the sandboxee may
 * write there is part of any policy (the mount tree alone lets it write /proc/self/attr,
 * /proc/self/comm, oom_score_adj...). The binary is allowed by the forkserver from its exec fd.
 */
export function landlockRules(entries: readonly FsEntry[]): LandlockRule[] {
  return [{ path: '/', access: A.READ_DIR }, ...entries.flatMap((e) => entryRules(e, false))];
}

/** One filesystem entry's rules; `host`: landlock isolation (/dev stands for its five devices). */
function entryRules(e: FsEntry, host: boolean): LandlockRule[] {
  const path = posix.normalize(e.inside).replace(/(.)\/$/, '$1');
  switch (e.type) {
    case 'proc':
      return [{ path, access: READ }];
    case 'dev':
      return host
        ? MINIMAL_DEV.map((d) => ({ path: posix.join(path, d), access: DEVICE }))
        : [{ path, access: DEVICE | A.READ_DIR }];
    case 'tmpfs':
      return [{ path, access: READ_WRITE }];
    case 'bind':
      return [{ path, access: e.dev ? DEVICE : e.writable ? READ_WRITE : READ_ONLY }];
  }
}

let kernelAbi: number | undefined;
/** The highest Landlock ABI the kernel offers, 0 when it has none (asked once). */
export function landlockAbi(): number {
  if (kernelAbi === undefined) {
    const v = native().landlockAbi();
    kernelAbi = typeof v === 'number' && v > 0 ? v : 0;
  }
  return kernelAbi;
}

/** LANDLOCK_ACCESS_NET_* (ABI 4). */
export const NetAccess = { BIND_TCP: 1 << 0, CONNECT_TCP: 1 << 1 } as const;
/** The device files a policy's addDirectory('/dev') stands for (the namespaces mode's minimal /dev). */
const MINIMAL_DEV = ['null', 'zero', 'full', 'random', 'urandom'];

/**
 * The rules for landlock isolation, where the paths are the host's own (no mount tree; the
 * caller refuses an entry whose inside path differs from its outside path). Unlike the mount
 * tree's rules there is no rule on "/": a rule applies to everything beneath its directory, and
 * listing the whole host is not the policy's. /proc is the host's procfs, read-only; /dev stands
 * for its five harmless devices only. A tmpfs has become a scratch directory (its `inside`).
 */
export function hostLandlockRules(entries: readonly FsEntry[]): LandlockRule[] {
  return entries.flatMap((e) => entryRules(e, true));
}

/**
 * Appends the LANDLOCK ops: all fs rights handled, both scopes. Namespaces mode handles no TCP
 * right (the sandbox has a network namespace of its own; see docs/security.md). Landlock
 * isolation (`host`) handles TCP bind and connect with no port allowed unless the policy shares
 * the host network: the sandboxee's own sockets can neither connect nor bind, and the monitor's
 * connects (sockets of the executor, injected) are the only way out.
 */
export function addLandlockOps(ops: OpList, entries: readonly FsEntry[], host?: { restrictTcp: boolean }): void {
  const net = host?.restrictTcp ? NetAccess.BIND_TCP | NetAccess.CONNECT_TCP : 0;
  ops.landlockConfig(ALL_FS, net, Scope.ABSTRACT_UNIX_SOCKET | Scope.SIGNAL);
  for (const r of host ? hostLandlockRules(entries) : landlockRules(entries)) ops.landlockPath(r.access, r.path);
}
