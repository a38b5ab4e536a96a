// custom.ts: the executor's link to a custom forkserver (docs/architecture.md, "Custom-fork mode"). A user forkserver (a
// Node or C program using ForkingClient / sbx/forking_client.h) runs as an ordinary sandboxee:
// its own namespaces, mounts and limits, its Comms channel at fd 1023, and, as every
// sandbox-me-here sandboxee, from its exec only the io_uring denial (policy/io-uring-filter.ts:
// libuv then opens no ring that fork() would share with the children); each child installs its
// own filter on top with sandboxMeHere. `new Executor(handle)` sandboxes then ask it for
// a child instead of starting a program: REQUEST (the child's fds) → FORKED (its pid) + its pidfd;
// EXITED when the forkserver reaped it. The forkserver is as untrusted as its children: every
// reply is checked, and one that breaks the protocol ends the forkserver (and its children).
import { readFileSync } from 'node:fs';
import { type Comms, CommsError, SbxError, Tag, type Message } from '@sbx/client';
import { closeQuietly } from '@sbx/client/internal';
import type { Policy } from '../policy/policy.js';
import type { Result } from '../sandbox/result.js';
import { decodeExited, EXITED_SIZE, InFlight, sendRequest, type Exited } from './link.js';
import type { ForkTrace } from './fork-trace.js';
import { SandboxedSpares, type SandboxedSpare } from './sandboxed-spares.js';

/** Fork protocol tags; mirrors native/client/include/sbx/forking_client.h (keep them equal). */
export const ForkTag = { Request: 0x00005320, Forked: 0x00005321, Exited: 0x00005322 } as const;
export const FORK_MAX_FDS = 16;
/** REQUEST flag (high half of the fd count word): trace this request. */
export const FORK_REQUEST_TRACE = 0x10000;
/** Replies are small: FORKED carries at most a 512-byte message. */
export const MAX_REPLY = 1024;
/** How long a fork request may take before the forkserver is considered hung. */
const DEFAULT_FORK_TIMEOUT_MS = 10_000;

export type ForkServerHandleErrorCode = 'FORKSERVER_DIED' | 'FORK_FAILED' | 'PROTOCOL' | 'TIMEOUT' | 'CLOSED';

/** A custom forkserver failed or broke the fork protocol. */
export class ForkServerHandleError extends SbxError {
  declare readonly code: ForkServerHandleErrorCode;
  constructor(code: ForkServerHandleErrorCode, message: string) {
    super(code, message);
  }
}

export interface Forked {
  id: bigint;
  /** The child's pid in the host's view. */
  pid: number;
  /** Its pid inside the forkserver's pid namespace. */
  nsPid: number;
  /** pidfd of the child; the caller owns it. */
  pidfd: number;
}

interface Pending {
  resolve: (f: Forked) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
  trace: ForkTrace | null;
}

/** The host pid a pidfd refers to (-1 when it is no pidfd or the process is gone). */
export function pidOfPidfd(pidfd: number): number {
  try {
    const m = /^Pid:\s*(-?\d+)$/m.exec(readFileSync(`/proc/self/fdinfo/${pidfd}`, 'utf8'));
    return m ? Number(m[1]) : -1;
  } catch {
    return -1;
  }
}

/** The PROTOCOL error when the forkserver reported child `id` reaped although its pidfd still
 *  names a process (a reaped child's pidfd shows pid -1), else null. */
function exitedLie(id: bigint, pidfd: number): ForkServerHandleError | null {
  const pid = pidOfPidfd(pidfd);
  if (pid <= 0) return null;
  return new ForkServerHandleError(
    'PROTOCOL',
    `the forkserver reported the end of child ${id} while it still runs (host pid ${pid}; its pidfd says so): the forkserver was ended`,
  );
}

function parentOf(pid: number): number {
  try {
    const m = /^PPid:\s*(\d+)$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : -1;
  } catch {
    return -1;
  }
}

/**
 * A running forkserver (startForkServer()). close() ends it and every child it forked;
 * so does the executor's death (the forkserver's sandbox dies as any sandbox does).
 */
export class ForkServerHandle {
  /** The forkserver's own Result, once it ended. */
  readonly result: Promise<Result>;
  /** The policy the forkserver's sandbox was built from (its mounts are every child's view). */
  readonly policy: Policy;
  private readonly comms: Comms;
  private readonly inFlight: InFlight;
  private readonly initPid: number;
  private readonly kill: () => void;
  private readonly pending = new Map<bigint, Pending>();
  private readonly exitWaiters = new Map<
    bigint,
    { resolve: (e: Exited) => void; reject: (e: Error) => void; pidfd: number }
  >();
  private readonly early = new Map<bigint, Exited>();
  private awaitingPidfd: { id: bigint; nsPid: number } | null = null;
  private nextId = 1n;
  private dead: Error | null = null;
  /** Sends are serialised: a request and its Fd messages must not interleave with another's. */
  private sendChain: Promise<void> = Promise.resolve();
  private readonly forkTimeoutMs: number;
  private spares: SandboxedSpares | null = null;

  /** @internal built by startForkServer() */
  constructor(
    comms: Comms,
    initPid: number,
    policy: Policy,
    result: Promise<Result>,
    kill: () => void,
    forkTimeoutMs = DEFAULT_FORK_TIMEOUT_MS,
  ) {
    this.comms = comms;
    this.inFlight = new InFlight(comms);
    this.initPid = initPid;
    this.policy = policy;
    this.kill = kill;
    this.forkTimeoutMs = forkTimeoutMs;
    this.result = result;
    comms.unref();
    comms.onMessage(
      (m) => this.onMessage(m),
      (e) => this.die(e),
    );
    result.then(
      (r) => this.die(new ForkServerHandleError('FORKSERVER_DIED', `the forkserver ended: ${r.toString()}`)),
      (e) => this.die(e as Error),
    );
  }

  /** True until the forkserver ended or close() was called. */
  get alive(): boolean {
    return this.dead === null;
  }

  /** The forkserver's host pid namespace init (its sandbox's pid 1). */
  get pid(): number {
    return this.initPid;
  }

  /**
   * The children's policy given to startForkServer() (`childPolicy`), whose children are forked
   * and sandboxed ahead of requests; null without it.
   */
  get childPolicy(): Policy | null {
    return this.spares?.policy ?? null;
  }

  /** Sandboxed spares ready now (0 without `childPolicy`). */
  get sandboxedSparesReady(): number {
    return this.spares?.size ?? 0;
  }

  /** Resolves once `n` sandboxed spares (default: as many as asked for) are ready; rejects after `timeoutMs`. */
  waitForSandboxedSpares(n?: number, timeoutMs?: number): Promise<void> {
    if (!this.spares)
      return Promise.reject(new TypeError('waitForSandboxedSpares(): this forkserver has no childPolicy'));
    return this.spares.waitReady(n, timeoutMs);
  }

  /** @internal startForkServer({ childPolicy }): keep `count` children sandboxed ahead. */
  startSandboxedSpares(policy: Policy, count: number): void {
    const handle = this;
    this.spares = new SandboxedSpares(
      {
        fork: (fds, flags) => this.fork(fds, null, flags),
        waitExit: (id, pidfd) => this.waitExit(id, pidfd),
        get alive() {
          return handle.alive;
        },
      },
      policy,
      count,
    );
  }

  /** @internal A sandboxed spare for a request of `policy` (same compiled program), or null. */
  takeSandboxedSpare(policy: Policy): SandboxedSpare | null {
    return this.spares?.take(policy) ?? null;
  }

  /** Ends the forkserver and all its children; resolves with its Result. */
  async close(): Promise<Result> {
    this.die(new ForkServerHandleError('CLOSED', 'the forkserver was closed'));
    return this.result;
  }

  /** @internal Asks for a child with `fds` (target number → executor fd, borrowed); `trace`
   *  gets the request's stamps (the forkserver's, from FORKED). */
  async fork(fds: Array<{ target: number; fd: number }>, trace: ForkTrace | null = null, flags = 0): Promise<Forked> {
    if (this.dead) throw this.dead;
    if (fds.length > FORK_MAX_FDS)
      throw new TypeError(`custom-fork mode: at most ${FORK_MAX_FDS} fds per child, got ${fds.length}`);
    const id = this.nextId++;
    const payload = Buffer.alloc(12 + 4 * fds.length);
    payload.writeBigUInt64LE(id, 0);
    payload.writeUInt32LE((fds.length | (trace ? FORK_REQUEST_TRACE : 0) | flags) >>> 0, 8);
    fds.forEach((f, i) => {
      payload.writeUInt32LE(f.target, 12 + 4 * i);
    });
    this.inFlight.hold();
    const forked = new Promise<Forked>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.die(
          new ForkServerHandleError(
            'TIMEOUT',
            `the forkserver did not answer fork request ${id} within ${this.forkTimeoutMs} ms (it hangs: killed)`,
          ),
        );
      }, this.forkTimeoutMs);
      this.pending.set(id, { resolve, reject, timer, trace });
    });
    forked.catch(() => {});
    const send = this.sendChain.then(async () => {
      await sendRequest(
        this.comms,
        ForkTag.Request,
        payload,
        fds.map((f) => f.fd),
      );
    });
    this.sendChain = send.catch(() => {});
    try {
      await send;
      trace?.mark('request sent');
      return await forked;
    } catch (err) {
      const p = this.pending.get(id);
      if (p) clearTimeout(p.timer);
      this.pending.delete(id);
      this.inFlight.release();
      throw err instanceof CommsError
        ? new ForkServerHandleError('FORKSERVER_DIED', `lost the forkserver: ${err.message}`)
        : err;
    }
  }

  /**
   * @internal Resolves with the child's wait status once the forkserver reaped it. `pidfd` (the
   * child's, borrowed until this settles) backs the forkserver's word: an EXITED while the pidfd
   * still names a live process is a lie, and ends the forkserver (PROTOCOL).
   */
  waitExit(id: bigint, pidfd: number): Promise<Exited> {
    const early = this.early.get(id);
    if (early) {
      this.early.delete(id);
      const lie = exitedLie(id, pidfd);
      if (lie) {
        this.die(lie);
        return Promise.reject(lie);
      }
      return Promise.resolve(early);
    }
    if (this.dead) return Promise.reject(this.dead);
    return new Promise((resolve, reject) => this.exitWaiters.set(id, { resolve, reject, pidfd }));
  }

  private settle(id: bigint): Pending | undefined {
    const p = this.pending.get(id);
    if (!p)
      throw new ForkServerHandleError('PROTOCOL', `the forkserver answered fork request ${id}, which is not pending`);
    this.pending.delete(id);
    clearTimeout(p.timer);
    this.inFlight.release();
    return p;
  }

  private onMessage(m: Message): void {
    try {
      if (this.awaitingPidfd) {
        const { id, nsPid } = this.awaitingPidfd;
        this.awaitingPidfd = null;
        if (m.tag !== Tag.Fd) {
          if (m.fd >= 0) closeQuietly(m.fd);
          throw new ForkServerHandleError(
            'PROTOCOL',
            `the forkserver sent no pidfd after FORKED (got tag 0x${m.tag.toString(16)})`,
          );
        }
        const pid = pidOfPidfd(m.fd);
        // The child must be the forkserver's own: its parent is the forkserver, whose parent is
        // the sandbox's init. Anything else (the forkserver itself, its init, a grandchild) is a lie.
        const parent = pid > 0 ? parentOf(pid) : -1;
        if (pid <= 0 || parent <= 0 || parent === this.initPid || parentOf(parent) !== this.initPid) {
          closeQuietly(m.fd);
          throw new ForkServerHandleError(
            'PROTOCOL',
            `the forkserver's reply to fork request ${id} carries no pidfd of a child of the forkserver (pid ${pid}, parent ${parent})`,
          );
        }
        const p = this.settle(id);
        p?.trace?.mark('pidfd checked');
        p?.resolve({ id, pid, nsPid, pidfd: m.fd });
        return;
      }
      if (m.fd >= 0) {
        closeQuietly(m.fd);
        throw new ForkServerHandleError('PROTOCOL', 'the forkserver sent an fd where none belongs');
      }
      const d = m.data;
      if (m.tag === ForkTag.Forked && d.length >= 16) {
        const id = d.readBigUInt64LE(0);
        const err = d.readInt32LE(8);
        const nsPid = d.readUInt32LE(12);
        if (!this.pending.has(id))
          throw new ForkServerHandleError(
            'PROTOCOL',
            `the forkserver answered fork request ${id}, which is not pending`,
          );
        if (err === 0) {
          const trace = this.pending.get(id)?.trace;
          if (trace) {
            trace.mark('FORKED received');
            if (d.length > 16 && !trace.addRecords('forkserver', d.subarray(16)))
              throw new ForkServerHandleError(
                'PROTOCOL',
                `the forkserver's FORKED for request ${id} carries ${d.length - 16} bytes that are no trace`,
              );
          }
          this.awaitingPidfd = { id, nsPid };
          return;
        }
        const message = d
          .subarray(16)
          .toString('utf8')
          .replace(/[^\x20-\x7e]/g, '?');
        this.settle(id)?.reject(
          new ForkServerHandleError('FORK_FAILED', `the forkserver could not fork: ${message || `errno ${-err}`}`),
        );
        return;
      }
      if (m.tag === ForkTag.Exited && d.length === EXITED_SIZE) {
        const { id, exited: e } = decodeExited(d);
        const w = this.exitWaiters.get(id);
        if (w) {
          const lie = exitedLie(id, w.pidfd);
          if (lie) throw lie;
          this.exitWaiters.delete(id);
          w.resolve(e);
        } else if (id < this.nextId && this.early.size < 4096) this.early.set(id, e);
        else
          throw new ForkServerHandleError(
            'PROTOCOL',
            `the forkserver reported the end of child ${id}, which it was never asked for`,
          );
        return;
      }
      throw new ForkServerHandleError(
        'PROTOCOL',
        `unexpected message from the forkserver (tag 0x${m.tag.toString(16)}, ${d.length} bytes)`,
      );
    } catch (err) {
      this.die(err as Error);
    }
  }

  private die(err: Error): void {
    if (this.dead) return;
    this.spares?.close();
    this.dead =
      err instanceof CommsError
        ? new ForkServerHandleError('FORKSERVER_DIED', `lost the forkserver: ${err.message}`)
        : err;
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(this.dead);
    }
    this.pending.clear();
    for (const w of this.exitWaiters.values()) w.reject(this.dead);
    this.exitWaiters.clear();
    this.early.clear();
    this.inFlight.reset();
    this.comms.close();
    // The forkserver's sandbox (its init) takes every child along.
    this.kill();
  }
}
