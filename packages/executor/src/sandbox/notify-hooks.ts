// notify-hooks.ts: run-time syscall decisions and life-cycle events (Sandbox2's Notify).
// A PolicyBuilder.notifySyscall() rule returns USER_NOTIF (data NOTIFY_DATA.USER); the monitor
// thread recognises such a notification by re-running the sandbox's filter (native/addon/hooks.h),
// keeps the calling thread parked in the kernel and reports the call here. The handler's answer
// goes back to the monitor (monitorHookReply): CONTINUE (the kernel runs the call in the
// sandboxee), an errno, or a kill of the sandbox. A handler that throws, answers nonsense or does
// not answer within `syscallTimeoutMs` ends the sandbox; the deadline is kept by the monitor thread,
// so it holds while this event loop is busy.
import { native, type MonitorEvent } from '@sbx/client/internal';
import { SECCOMP_RET_USER_NOTIF, type BpfInsn } from '../policy/bpf.js';
import { NOTIFY_DATA } from '../policy/compiler.js';
import type { Policy, SyscallRule } from '../policy/policy.js';
import { errnoNumber } from '../policy/syscalls.js';
import type { Arch, Result, Violation } from './result.js';

/** The answer to a hooked syscall. */
export type SyscallAnswer =
  /** The kernel runs the call in the sandboxee, as if the filter had allowed it. */
  | 'allow'
  /** The sandbox ends with a VIOLATION (kind 'hook'); the call never returns. */
  | 'kill'
  /** The call fails with this errno (1..4095 or a name such as 'EPERM'), without running. */
  | { readonly errno: number | string };

/** A syscall a notifySyscall() rule sent to the handler: the registers, nothing from memory. */
export interface HookedSyscall {
  /** The syscall's name ("getpid"), or "unknown(<nr>)". */
  readonly syscall: string;
  readonly nr: number;
  readonly arch: Arch;
  /**
   * The six raw register arguments. Integers and flags are what the call will use. A pointer
   * argument only says where the data is: the sandboxee can change that memory after the handler
   * read it and before the kernel does (TOCTOU), so never decide on what a pointer points to.
   */
  readonly args: readonly bigint[];
  /** The calling thread, in the host's pid view. */
  readonly pid: number;
  /** The instruction pointer of the call. */
  readonly ip: bigint;
}

/** Sandbox2's Notify: `new Sandbox(executor, policy, notify)`. Every member is optional. */
export interface SandboxNotify {
  /**
   * Decides a syscall a notifySyscall() rule (or a policy file's "notify") sent here. May return a
   * Promise. The calling thread waits in the kernel meanwhile. Throwing, answering anything but a
   * SyscallAnswer, or not answering within syscallTimeoutMs ends the sandbox with an
   * INTERNAL_ERROR Result that names the handler's failure.
   */
  onSyscall?(call: HookedSyscall): SyscallAnswer | Promise<SyscallAnswer>;
  /**
   * The sandboxee runs: the target program was exec'd (sandbox-before-exec mode), or its
   * sandboxMeHere() completed. pid: the target in the host's pid view. A throw ends the sandbox
   * (INTERNAL_ERROR).
   */
  onStarted?(event: { readonly pid: number }): void;
  /**
   * The target was ended by a signal (the wait status its init saw; signals it handled are not
   * observable without ptrace). Called before onFinished. A throw is rethrown asynchronously.
   */
  onSignal?(event: { readonly signal: NodeJS.Signals | number; readonly pid: number }): void;
  /** The Result, right before awaitResult() resolves to it. A throw is rethrown asynchronously. */
  onFinished?(result: Result): void;
  /** How long onSyscall may take per call, in ms (default 5000, at most 3 600 000). */
  syscallTimeoutMs?: number;
}

/** The default time a handler has to answer one call. */
export const DEFAULT_SYSCALL_TIMEOUT_MS = 5000;
const MAX_SYSCALL_TIMEOUT_MS = 3_600_000;
/** The filter's return for a hooked call. */
export const HOOK_RET = (SECCOMP_RET_USER_NOTIF | NOTIFY_DATA.USER) >>> 0;

const NOTIFY_KEYS = new Set(['onSyscall', 'onStarted', 'onSignal', 'onFinished', 'syscallTimeoutMs']);

/** Checks a SandboxNotify argument; throws a TypeError naming what is wrong. */
export function checkNotify(notify: unknown): SandboxNotify {
  if (notify === null || typeof notify !== 'object')
    throw new TypeError('Sandbox: the third argument (notify) must be an object such as { onSyscall(call) {...} }');
  const n = notify as Record<string, unknown>;
  for (const k of Object.keys(n)) {
    if (!NOTIFY_KEYS.has(k))
      throw new TypeError(`Sandbox notify: unknown member "${k}" (known: ${[...NOTIFY_KEYS].join(', ')})`);
    if (k !== 'syscallTimeoutMs' && n[k] !== undefined && typeof n[k] !== 'function')
      throw new TypeError(`Sandbox notify: ${k} must be a function`);
  }
  const t = n['syscallTimeoutMs'];
  if (t !== undefined && (typeof t !== 'number' || !Number.isInteger(t) || t < 1 || t > MAX_SYSCALL_TIMEOUT_MS))
    throw new TypeError(
      `Sandbox notify: syscallTimeoutMs must be an integer from 1 to ${MAX_SYSCALL_TIMEOUT_MS}, got ${String(t)}`,
    );
  return n as SandboxNotify;
}

function returnsUserNotif(rule: SyscallRule): boolean {
  return rule.kind === 'bpf' && rule.rule.some((i: BpfInsn) => i.kind === 'ret' && i.action.type === 'user_notif');
}

/** The names of the syscalls a policy sends to a notify handler (empty: none). */
export function hookedSyscalls(policy: Policy): string[] {
  const names = [...policy.rules, ...policy.overridable].filter(returnsUserNotif).map((r) => r.name ?? String(r.nr));
  return [...new Set(names)];
}

/** The monitor's hook table for the filter a sandbox installs (native/addon/hooks.cc). */
export function encodeHookTable(filter: Buffer, timeoutMs: number): Buffer {
  const head = Buffer.alloc(16);
  head.writeUInt32LE(1, 0);
  head.writeUInt32LE(HOOK_RET, 4);
  head.writeUInt32LE(timeoutMs, 8);
  head.writeUInt32LE(filter.length / 8, 12);
  return Buffer.concat([head, filter]);
}

/** What the hooks need of their Sandbox. */
export interface HookSink {
  /** The monitor's id of the sandbox (0: not watched). */
  monitorId(): number;
  /** The Violation a monitor report describes (name, arch). */
  describe(e: MonitorEvent): Violation;
  /** The handler answered 'kill' (the monitor sent the tree signal): record the violation. */
  killed(v: Violation): void;
  /** The handler failed: end the sandbox, the Result is INTERNAL_ERROR with this reason. */
  fail(reason: string): void;
}

const ACTION = { allow: 0, errno: 1, kill: 2 } as const;

/** One sandbox's notify hooks and events. */
export class NotifyHooks {
  readonly timeoutMs: number;
  private startedSent = false;

  constructor(
    readonly notify: SandboxNotify,
    private readonly sink: HookSink,
  ) {
    this.timeoutMs = notify.syscallTimeoutMs ?? DEFAULT_SYSCALL_TIMEOUT_MS;
  }

  /** Why a sandbox with this policy cannot run these hooks, or null. */
  static refusal(
    policy: Policy,
    notify: SandboxNotify | null,
    mode: { beforeExec: boolean; monitored: boolean },
  ): string | null {
    const hooked = hookedSyscalls(policy);
    if (hooked.length === 0) return null;
    const what = `the policy sends ${hooked.join(', ')} to a notify handler (notifySyscall)`;
    if (!notify?.onSyscall)
      return `${what}, but the Sandbox has none: new Sandbox(executor, policy, { onSyscall(call) { ... } })`;
    if (!mode.beforeExec)
      return `${what}: notify hooks run in sandbox-before-exec mode only (not sandbox-me-here or custom-fork mode)`;
    if (!mode.monitored)
      return `${what}: notify hooks need the seccomp monitor (user notification, Linux 5.5+; not with monitor: 'kill')`;
    return null;
  }

  /** The monitor's hook table for `filter`, or undefined when the policy hooks nothing. */
  table(policy: Policy, filter: Buffer): Buffer | undefined {
    return hookedSyscalls(policy).length ? encodeHookTable(filter, this.timeoutMs) : undefined;
  }

  /** A 'hook' or 'hook_timeout' report of the monitor. */
  onMonitorEvent(e: MonitorEvent): void {
    if (e.type === 'hook_timeout') {
      const v = this.sink.describe(e);
      this.sink.fail(`notify.onSyscall did not answer ${v.syscall} within ${this.timeoutMs} ms (syscallTimeoutMs)`);
    } else if (e.type === 'hook') void this.decide(e);
  }

  /** The sandboxee runs (once). */
  started(pid: number): void {
    if (this.startedSent || !this.notify.onStarted) return;
    this.startedSent = true;
    try {
      this.notify.onStarted({ pid });
    } catch (err) {
      this.sink.fail(`notify.onStarted threw: ${describeError(err)}`);
    }
  }

  /** The end of the sandbox: onSignal (when the target died of one), then onFinished. */
  finished(result: Result, targetSignal: NodeJS.Signals | number | null): void {
    const pid = result.pid ?? 0;
    if (targetSignal !== null) emit(() => this.notify.onSignal?.({ signal: targetSignal, pid }));
    emit(() => this.notify.onFinished?.(result));
  }

  private async decide(e: MonitorEvent): Promise<void> {
    const v = this.sink.describe(e);
    const call: HookedSyscall = Object.freeze({
      syscall: v.syscall,
      nr: v.nr,
      arch: v.arch,
      args: Object.freeze([...e.args]),
      pid: e.pid,
      ip: e.ip,
    });
    let answer: unknown;
    try {
      answer = await this.notify.onSyscall!(call);
    } catch (err) {
      this.reply(e, ACTION.kill, 0);
      this.sink.fail(`notify.onSyscall threw on ${v.syscall}: ${describeError(err)}`);
      return;
    }
    const parsed = parseAnswer(answer);
    if (typeof parsed === 'string') {
      this.reply(e, ACTION.kill, 0);
      this.sink.fail(`notify.onSyscall answered ${v.syscall} with ${parsed}`);
      return;
    }
    if (parsed.action === ACTION.kill) {
      if (this.reply(e, ACTION.kill, 0))
        this.sink.killed({ ...v, kind: 'hook', rule: "the notify handler answered 'kill'" });
      return;
    }
    this.reply(e, parsed.action, parsed.errno);
  }

  /** Sends the answer; false when the call no longer waits (timed out, the sandbox gone). */
  private reply(e: MonitorEvent, action: 0 | 1 | 2, errno: number): boolean {
    const id = this.sink.monitorId();
    if (!id || e.notif === undefined) return false;
    return native().monitorHookReply(id, e.notif, action, errno);
  }
}

/** The answer as an action, or a description of what is wrong with it. */
function parseAnswer(a: unknown): { action: 0 | 1 | 2; errno: number } | string {
  if (a === 'allow') return { action: ACTION.allow, errno: 0 };
  if (a === 'kill') return { action: ACTION.kill, errno: 0 };
  const expected = "(expected 'allow', 'kill' or { errno: 1..4095 | 'EPERM' ... })";
  if (a !== null && typeof a === 'object' && 'errno' in a) {
    const e = (a as { errno: unknown }).errno;
    const n = typeof e === 'string' ? errnoNumber(e) : e;
    if (typeof n === 'number' && Number.isInteger(n) && n >= 1 && n <= 4095) return { action: ACTION.errno, errno: n };
    return `an invalid errno ${JSON.stringify(e) ?? String(e)} ${expected}`;
  }
  let shown: string;
  try {
    shown = JSON.stringify(a) ?? String(a);
  } catch {
    shown = String(a);
  }
  return `${shown} ${expected}`;
}

function describeError(err: unknown): string {
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
}

/** Calls an event listener; what it throws surfaces as an uncaught exception, as from an EventEmitter. */
function emit(f: () => void): void {
  try {
    f();
  } catch (err) {
    queueMicrotask(() => {
      throw err;
    });
  }
}
