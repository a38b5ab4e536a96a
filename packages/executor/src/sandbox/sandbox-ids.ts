// sandbox-ids.ts: a host uid/gid of its own for each concurrent sandbox of a root executor, leased
// from a range like a systemd dynamic user. The kernel keeps many counters per host user (fds in
// flight in unix sockets, RLIMIT_NPROC in landlock isolation, and every counter charged to the uid
// that owns a user namespace: pending signals, message queues, inotify, namespaces); sandboxes that
// shared one uid shared them, so one sandbox could make every other fail.
//
// A lease is an exclusive flock() on /run/sbx/ids/<uid>: other executor processes on the host skip
// a locked uid, and the kernel drops the lock when the holder dies, so nothing goes stale. The uid
// is released when its sandbox's whole tree is gone (Sandbox.finish): the file is unlinked, then
// closed, so that files do not pile up; a lease therefore counts only if the locked file is still
// the one at the path (another process may have locked a file just unlinked). gid = uid.
//
// An unprivileged executor can map only its own uid into a user namespace (and cannot switch to
// another uid), so its sandboxes all run as its own uid: these counters stay shared with it and
// with each other, bounded only by the per-sandbox limits (limits.ts).
import { fstatSync, mkdirSync, openSync, statSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { SbxError } from '@sbx/client';
import { closeQuietly, native } from '@sbx/client/internal';

export interface SandboxIdRange {
  /** The first uid (and gid) of the range. */
  first: number;
  /** How many ids it has: at most that many sandboxes (and spawn-pool slots) at once. */
  count: number;
}

/** Default: 65,536 ids from 1,880,000,000: above systemd's dynamic users (61,184-65,519) and
 *  systemd-nspawn's automatic container ranges (524,288-1,879,048,191), and the usual /etc/subuid
 *  ranges (from 100,000), below 2^31 (tools that read a uid as signed). */
export const DEFAULT_SANDBOX_ID_RANGE: Readonly<SandboxIdRange> = Object.freeze({
  first: 1_880_000_000,
  count: 65_536,
});
const LOCK_DIR = '/run/sbx/ids';

let range: SandboxIdRange | null = { ...DEFAULT_SANDBOX_ID_RANGE };

export class SandboxIdsError extends SbxError {
  declare readonly code: 'SANDBOX_IDS';
  constructor(message: string) {
    super('SANDBOX_IDS', message);
  }
}

/**
 * Sets the host id range a root executor leases one uid/gid per sandbox from, or 'off' (every
 * sandbox then runs as its Executor's `sandboxUser`, nobody by default, as before). Takes effect
 * for sandboxes started from now on. No effect on an unprivileged executor.
 */
export function setSandboxIdRange(r: SandboxIdRange | 'off'): void {
  kept?.release(); // a lease kept from the range before
  kept = null;
  if (r === 'off') {
    range = null;
    return;
  }
  if (
    r === null ||
    typeof r !== 'object' ||
    !Number.isSafeInteger(r.first) ||
    !Number.isSafeInteger(r.count) ||
    r.first < 1 ||
    r.count < 1 ||
    r.first + r.count > 0xffffffff
  ) {
    throw new SandboxIdsError(
      `setSandboxIdRange: expected { first, count } with 1 <= first and first + count <= 4294967295 (ids 0 and 4294967295 are never leased), or 'off'; got ${JSON.stringify(r)}`,
    );
  }
  range = { first: r.first, count: r.count };
}

/** The range in use, or null (off, or not root). */
export function sandboxIdRange(): SandboxIdRange | null {
  return process.getuid?.() === 0 ? range : null;
}

/** A leased uid/gid. release() is idempotent. */
export class SandboxIds {
  private fd: number;
  constructor(
    readonly uid: number,
    fd: number,
    private readonly path: string,
  ) {
    this.fd = fd;
  }
  get gid(): number {
    return this.uid;
  }
  get held(): boolean {
    return this.fd >= 0;
  }
  release(): void {
    if (this.fd < 0) return;
    try {
      unlinkSync(this.path);
    } catch {
      // already gone
    }
    closeQuietly(this.fd);
    this.fd = -1;
  }
}

/** Uids this process holds (leases are per open file: a second open of our own file would succeed). */
const mine = new Set<number>();
let cursor = -1;

/** The locked fd is still the file at path (not one its holder unlinked on release). */
function sameFile(fd: number, path: string): boolean {
  try {
    return fstatSync(fd).ino === statSync(path).ino;
  } catch {
    return false;
  }
}

/** A lease a request made that a spawn-pool slot did not need (the slot runs as its own uid): no
 *  process ever ran as it, so the next sandbox takes it rather than leasing anew. */
let kept: SandboxIds | null = null;

/** Keeps `ids`, which no process ever ran as, for the next sandbox (or releases it). */
export function keepUnusedSandboxIds(ids: SandboxIds): void {
  if (kept === null && ids.held) kept = ids;
  else ids.release();
}

/** @internal (tests) The uid kept for the next sandbox, if any. */
export function keptSandboxUid(): number | null {
  return kept?.held ? kept.uid : null;
}

/** A uid for a new sandbox: the kept one when it is still held and in `r`, else a new lease. */
export function takeSandboxIds(r: SandboxIdRange): SandboxIds {
  const k = kept;
  kept = null;
  if (k?.held && k.uid >= r.first && k.uid < r.first + r.count) return k;
  k?.release();
  return leaseSandboxIds(r);
}

/** Leases a free uid of the range; throws SandboxIdsError when all are taken. */
export function leaseSandboxIds(r: SandboxIdRange): SandboxIds {
  mkdirSync(LOCK_DIR, { recursive: true, mode: 0o700 });
  // Each executor starts at a random place, so that executors started together rarely collide.
  if (cursor < 0) cursor = Math.floor(Math.random() * r.count);
  for (let tried = 0; tried < r.count; tried++) {
    cursor = (cursor + 1) % r.count;
    const uid = r.first + cursor;
    if (mine.has(uid)) continue;
    const path = join(LOCK_DIR, String(uid));
    const fd = openSync(path, 'a', 0o600);
    if (native().flockExclusive(fd) && sameFile(fd, path)) {
      mine.add(uid);
      const ids = new SandboxIds(uid, fd, path);
      const release = ids.release.bind(ids);
      ids.release = () => {
        if (ids.held) mine.delete(uid);
        release();
      };
      return ids;
    }
    closeQuietly(fd);
  }
  throw new SandboxIdsError(
    `no free sandbox uid: all ${r.count} ids from ${r.first} are leased (one per running sandbox and spawn-pool slot, across every executor on this host); widen it with setSandboxIdRange()`,
  );
}
