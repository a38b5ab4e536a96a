// sandboxed-spares.ts: children of a custom forkserver made and sandboxed before any request
// (startForkServer({ childPolicy })). Each one is an ordinary fork request flagged SANDBOXED with
// only its handshake socket: the child runs sandboxMeHere() at once (the executor serves it as for
// any child: the listener taken from that child with pidfd_getfd, the monitor watching it), then
// waits under its filter for its assignment. A request whose policy compiles to the same program
// takes one: its fds go over the handshake channel (ASSIGN, then the fds), and nothing else is on
// its path. Everything the executor relies on it established itself: the forkserver only forked.
import type { Comms } from '@sbx/client';
import { closeQuietly, native, type MonitorEvent } from '@sbx/client/internal';
import { readlinkSync } from 'node:fs';
import { compilePolicy } from '../policy/compiler.js';
import { evaluate } from '../policy/evaluator.js';
import type { Policy } from '../policy/policy.js';
import { syscallNumber } from '../policy/syscalls.js';
import { AUDIT_ARCH_AARCH64, AUDIT_ARCH_X86_64 } from '../policy/bpf.js';
import {
  clientCompileOptions,
  prepareClientHandshake,
  serveClientHandshake,
  CLIENT_FD,
} from '../sandbox/client-handshake.js';
import * as monitor from '../sandbox/monitor.js';
import { networkTable } from '../sandbox/sandbox-policy.js';
import type { Exited } from './link.js';

/** A forked child as custom.ts's Forked (declared here: custom.ts imports this file). */
export interface Forked {
  id: bigint;
  pid: number;
  nsPid: number;
  pidfd: number;
}

/** REQUEST flag (high half of the fd count word): a sandboxed spare (forking_client.h). */
export const FORK_REQUEST_SANDBOXED = 0x20000;
/** executor → sandboxed spare: u32 n | n × u32 target, then n Fd messages (sbx/client.h). */
export const CLIENT_TAG_ASSIGN = 0x00005316;
/** Quiet after a spare was taken before the next one is made. */
const REFILL_DELAY_MS = 15;
/** Most sandboxed spares a handle keeps. */
export const MAX_SANDBOXED_SPARES = 16;

/** What the handle does for the spares (ForkServerHandle, without importing it: no cycle). */
export interface SpareHost {
  fork(fds: Array<{ target: number; fd: number }>, flags: number): Promise<Forked>;
  waitExit(id: bigint, pidfd: number): Promise<Exited>;
  readonly alive: boolean;
}

/** One sandboxed spare: forked, filtered, its listener watched; waiting for its request. */
export class SandboxedSpare {
  private handler: ((e: MonitorEvent) => void) | null = null;
  /** Something happened before a request came (a violation, the end): never handed out. */
  spoiled = false;
  /** A request took it: its Sandbox owns the pidfd and the monitor registration from then on. */
  adopted = false;
  constructor(
    readonly forked: Forked,
    readonly channel: Comms,
    readonly monitorId: number,
    readonly exit: Promise<Exited>,
  ) {}

  /** The monitor's reports for this child. */
  route(e: MonitorEvent): void {
    if (this.handler) {
      this.handler(e);
      return;
    }
    this.spoiled = true;
    if (e.type === 'violation') native().pidfdSendSignal(this.forked.pidfd, 9);
  }

  /** The request's Sandbox takes the monitor's reports from now on. */
  adopt(handler: (e: MonitorEvent) => void): void {
    this.adopted = true;
    this.handler = handler;
  }

  /** Hands the request's fds (borrowed until this resolves) to the child, which puts them in place. */
  async assign(fds: Array<{ target: number; fd: number }>): Promise<void> {
    const payload = Buffer.alloc(4 + 4 * fds.length);
    payload.writeUInt32LE(fds.length, 0);
    fds.forEach((f, i) => {
      payload.writeUInt32LE(f.target, 4 + 4 * i);
    });
    try {
      const sends = [this.channel.sendTLV(CLIENT_TAG_ASSIGN, payload), ...fds.map((f) => this.channel.sendFd(f.fd))];
      await Promise.all(sends);
    } finally {
      this.channel.close();
    }
  }
}

/** The client-mode program of a policy (the listener's number left out): what spares are compared by. */
const programs = new WeakMap<Policy, Buffer>();
export function clientProgram(policy: Policy): Buffer {
  let p = programs.get(policy);
  if (!p) {
    const prog = compilePolicy(policy, clientCompileOptions(-1)).program;
    const table = networkTable(policy);
    p = Buffer.concat([Buffer.from(prog.buffer, prog.byteOffset, prog.byteLength), table ?? Buffer.alloc(0)]);
    programs.set(policy, p);
  }
  return p;
}

/** F_DUPFD_CLOEXEC and F_SETFD (fcntl.h). */
const F_DUPFD_CLOEXEC = 1030;
const F_SETFD = 2;
const F_DUPFD = 0;
const MSG_CMSG_CLOEXEC = 0x40000000;
const FCNTL_NAMES: Record<number, string> = {
  [F_DUPFD]: 'F_DUPFD',
  [F_DUPFD_CLOEXEC]: 'F_DUPFD_CLOEXEC',
  [F_SETFD]: 'F_SETFD',
};

/**
 * Throws a TypeError when `policy` does not let a sandboxed spare put its request's fds in place
 * under its own filter: recvmsg() on the handshake fd, fcntl(F_DUPFD, F_DUPFD_CLOEXEC, F_SETFD)
 * and close() (allowNodeRuntime() allows them all).
 */
export function checkChildPolicy(policy: Policy): void {
  const arch = policy.arch === 'aarch64' ? AUDIT_ARCH_AARCH64 : AUDIT_ARCH_X86_64;
  const program = compilePolicy(policy, clientCompileOptions(-1)).program;
  const missing: string[] = [];
  const needs: Array<[string, number[]]> = [
    ['recvmsg', [CLIENT_FD, 0, MSG_CMSG_CLOEXEC]],
    ['fcntl', [5, F_DUPFD_CLOEXEC, 0]],
    ['fcntl', [5, F_SETFD, 0]],
    ['fcntl', [5, F_DUPFD, 1023]],
    ['close', [5]],
  ];
  for (const [name, args] of needs) {
    const nr = syscallNumber(policy.arch, name);
    if (nr === undefined || evaluate(program, { nr, arch, args }).action !== 'ALLOW')
      missing.push(name === 'fcntl' ? `fcntl(${FCNTL_NAMES[args[1]!]})` : name);
  }
  if (missing.length)
    throw new TypeError(
      `startForkServer(): childPolicy must allow what a sandboxed spare does to receive its request under its filter: ${[...new Set(missing)].join(', ')} (allowNodeRuntime() allows them)`,
    );
}

/**
 * The spares of one forkserver handle: up to `count` ready at a time, made one after another in
 * the background; a spare that dies or is reported by the monitor while it waits is dropped.
 */
export class SandboxedSpares {
  private readonly ready: SandboxedSpare[] = [];
  private making = false;
  private refillTimer: NodeJS.Timeout | null = null;
  private closed = false;
  private failures = 0;
  readonly program: Buffer;

  constructor(
    private readonly host: SpareHost,
    readonly policy: Policy,
    readonly count: number,
  ) {
    this.program = clientProgram(policy);
    this.refill();
  }

  /** Spares ready now. */
  get size(): number {
    return this.ready.length;
  }

  /** A ready spare for a request of `policy`, or null (another policy, none ready). */
  take(policy: Policy): SandboxedSpare | null {
    if (this.closed || (policy !== this.policy && !clientProgram(policy).equals(this.program))) return null;
    let spare: SandboxedSpare | undefined;
    while ((spare = this.ready.shift())) {
      if (!spare.spoiled && pidAlive(spare.forked.pidfd)) break;
      this.discard(spare);
    }
    this.refillLater();
    return spare ?? null;
  }

  /** Resolves once `n` spares are ready (tests, benchmarks), or rejects after `timeoutMs`. */
  async waitReady(n = this.count, timeoutMs = 10_000): Promise<void> {
    const start = Date.now();
    while (this.ready.length < n) {
      if (this.closed || Date.now() - start > timeoutMs)
        throw new Error(`sandboxed spares: ${this.ready.length} of ${n} ready after ${Date.now() - start} ms`);
      await new Promise((r) => setTimeout(r, 2));
    }
  }

  close(): void {
    this.closed = true;
    if (this.refillTimer) clearTimeout(this.refillTimer);
    for (const s of this.ready.splice(0)) this.discard(s);
  }

  private discard(spare: SandboxedSpare): void {
    native().pidfdSendSignal(spare.forked.pidfd, 9);
    spare.channel.close();
    // The pidfd and the monitor are let go once the forkserver reported the end.
  }

  /** The next spare is made once the request that took one had time to run: a fork (tens of ms of
   *  CPU across forkserver and child) would otherwise compete with it on a small machine. */
  private refillLater(): void {
    if (this.refillTimer) return;
    this.refillTimer = setTimeout(() => {
      this.refillTimer = null;
      this.refill();
    }, REFILL_DELAY_MS);
    this.refillTimer.unref();
  }

  private refill(): void {
    if (this.making || this.closed || !this.host.alive || this.ready.length >= this.count) return;
    if (this.failures >= 3) return; // a forkserver whose children cannot be sandboxed: ordinary forks only
    this.making = true;
    this.makeOne().then(
      (spare) => {
        this.making = false;
        if (spare) {
          this.failures = 0;
          if (this.closed) this.discard(spare);
          else this.ready.push(spare);
        } else this.failures++;
        this.refill();
      },
      () => {
        this.making = false;
        this.failures++;
      },
    );
  }

  private async makeOne(): Promise<SandboxedSpare | null> {
    const client = prepareClientHandshake(this.policy);
    let forked: Forked;
    try {
      forked = await this.host.fork([{ target: CLIENT_FD, fd: client.theirs }], FORK_REQUEST_SANDBOXED);
    } catch {
      client.channel.close();
      return null;
    } finally {
      closeQuietly(client.theirs);
    }
    let spare: SandboxedSpare | null = null;
    let monitorId = 0;
    let failed = false;
    const exit = this.host.waitExit(forked.id, forked.pidfd);
    exit
      .catch(() => undefined)
      .then(() => {
        // The child is gone (or the forkserver): let go of what it held.
        const i = spare ? this.ready.indexOf(spare) : -1;
        if (i >= 0) this.ready.splice(i, 1);
        if (!spare?.adopted) {
          if (monitorId) monitor.unwatch(monitorId);
          closeQuietly(forked.pidfd);
          client.channel.close();
          if (i >= 0) this.refill();
        }
      });
    const route = (e: MonitorEvent): void => {
      if (spare) spare.route(e);
      else failed = true; // a report before the handshake ended: not a spare to hand out
    };
    await serveClientHandshake(client, this.policy, {
      take: async (n) => takeListener(forked.pidfd, n),
      watch: (listener) => {
        // killSignal 0: the monitor parks a violating call and leaves the kill to JS (route():
        // before a request the spare is killed; after, the request's Sandbox decides as for any child).
        monitorId = monitor.watch(listener, forked.pidfd, -1, route, networkTable(this.policy), 0);
      },
      fail: () => {
        failed = true;
        native().pidfdSendSignal(forked.pidfd, 9);
      },
      keepOpen: true,
    });
    if (failed || monitorId === 0 || client.channel.isClosed) {
      native().pidfdSendSignal(forked.pidfd, 9);
      return null;
    }
    spare = new SandboxedSpare(forked, client.channel, monitorId, exit);
    return spare;
  }
}

/** fd `n` of the child, which must be a seccomp listener (as the handshake of any child). */
function takeListener(pidfd: number, n: number): number {
  const fd = native().pidfdGetfd(pidfd, n);
  let target = '';
  try {
    target = readlinkSync(`/proc/self/fd/${fd}`);
  } catch {}
  if (target !== 'anon_inode:seccomp notify') {
    closeQuietly(fd);
    throw new Error(`fd ${n} of the sandboxed spare is ${target || 'unknown'}, not a seccomp listener`);
  }
  return fd;
}

/** Whether the process behind a pidfd is still there, not reaped (signal 0: one system call, on
 *  a spare's take, where reading its fdinfo cost tens of µs). */
function pidAlive(pidfd: number): boolean {
  try {
    return native().pidfdSendSignal(pidfd, 0);
  } catch {
    return false;
  }
}
