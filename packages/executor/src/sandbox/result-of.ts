// result-of.ts: the last step of a sandbox's life, a pure function. What the Sandbox recorded
// while the sandboxee ran (the facts) decides its Result, in one order of precedence: an SDK
// failure, a setup failure, a notify handler's failure, a violation, the walltime, a kill from this side, a signal, an exit.
import { treeUsage, type cgroupUsage } from './accounting.js';
import { Result, signalName, type Status, type Violation } from './result.js';
import type { Exited } from '../forkserver/link.js';
import type { StackTrace } from './stack-trace.js';

const SIGSYS = 31;

/** Everything resultOf() looks at: plain data, no sandbox needed. */
export interface SandboxFacts {
  /** Milliseconds from runAsync() to now. */
  walltimeMs: number;
  /** The forkserver's EXITED report (null: nothing was started, or it was lost). */
  exited: Exited | null;
  /** The raw wait status of the target as the sandbox's own init saw it (exact), if it sent one. */
  targetStatus: number | null;
  /** The sandbox's cgroup counters, read once the tree was gone (null: no cgroup). */
  usage: ReturnType<typeof cgroupUsage>;
  /** The sandboxee's host pid (0: never started). */
  hostPid: number;
  isolation: 'namespaces' | 'landlock';
  /** The SDK itself failed while waiting (INTERNAL_ERROR). */
  internal: Error | null;
  /** The first setup failure recorded (a message for the Result). */
  setupError: string | null;
  /** A notify handler failed (threw, answered nonsense, too late): INTERNAL_ERROR. */
  hookFailure?: string | null;
  /** This side ended the sandbox (kill(), run()'s abort or output cap): how, and the setup error
   *  recorded at that moment (a later one is a consequence of the kill). */
  killedAs: { status: 'EXTERNAL_KILL' | 'OUTPUT_LIMIT'; reason: string; setupErrorAtKill: string | null } | null;
  violation: Violation | null;
  /** The walltime limit ended it (the forkserver's flag, or custom-fork mode's timer). */
  timedOut: boolean;
  /** Violations reached the seccomp monitor (false: KILL_PROCESS, a SIGSYS with nothing known). */
  monitored: boolean;
  /** The filter was installed before exec (false: sandbox-me-here or custom-fork mode). */
  beforeExec: boolean;
  /** The kernel's OOM killer acted in the sandbox's cgroup. */
  oom: boolean;
  /** The limits the reasons quote. */
  walltimeLimitS: number;
  /** The stack trace taken before the tree was ended (stack-trace.ts), or why none could be. */
  stackTrace?: StackTrace | null;
  stackTraceError?: string | null;
  memoryLimitBytes: bigint | number | null;
}

/** The Result the facts mean. Pure: same facts, same Result. */
export function resultOf(f: SandboxFacts): Result {
  const base = {
    walltimeMs: f.walltimeMs,
    ...treeUsage(f.usage, f.exited),
    ...(f.hostPid ? { pid: f.hostPid } : {}),
    isolation: f.isolation,
  };
  // The init's report of the target is exact; without one (no pid namespace), the forkserver's.
  const st = f.targetStatus ?? f.exited?.status ?? 0;
  const sig = st & 0x7f;
  const signaled = (f.targetStatus !== null || f.exited !== null) && sig !== 0 && sig !== 0x7f;
  const setupError = f.killedAs ? f.killedAs.setupErrorAtKill : f.setupError;
  let status: Status;
  let reason = '';
  const extra: { exitCode?: number; signal?: NodeJS.Signals | number; violation?: Violation } = {};
  if (f.internal) {
    status = 'INTERNAL_ERROR';
    reason = f.internal.message;
  } else if (setupError) {
    status = 'SETUP_ERROR';
    reason = setupError;
  } else if (f.hookFailure) {
    status = 'INTERNAL_ERROR';
    reason = f.hookFailure;
  } else if (f.violation) {
    status = 'VIOLATION';
    extra.violation = f.violation;
    const v = f.violation;
    reason = `${v.kind} violation: ${v.syscall}${v.address ? ` to ${v.address}` : ''}${v.rule ? ` (${v.rule})` : ''}`;
  } else if (f.timedOut) {
    status = 'TIMEOUT';
    reason = `walltime limit of ${f.walltimeLimitS} s exceeded`;
  } else if (f.killedAs) {
    ({ status, reason } = f.killedAs);
  } else if (signaled && sig === SIGSYS && !f.monitored && f.beforeExec) {
    // KILL_PROCESS with no monitor to ask: a violation of an unknown syscall.
    status = 'VIOLATION';
    extra.violation = {
      kind: 'syscall',
      syscall: 'unknown (SIGSYS, no monitor)',
      nr: -1,
      arch: 'unknown',
      args: [],
      pid: f.hostPid,
    };
    reason = 'syscall violation: killed by SIGSYS (no seccomp monitor: the syscall is not known)';
  } else if (signaled) {
    status = 'SIGNALED';
    extra.signal = signalName(sig);
    reason = f.oom
      ? `killed by the kernel's OOM killer: limits.memory (${f.memoryLimitBytes} bytes) reached`
      : `terminated by ${extra.signal}`;
  } else {
    status = 'OK';
    extra.exitCode = (st >> 8) & 0xff;
  }
  if (signaled && status !== 'OK') extra.signal ??= signalName(sig);
  const stack = {
    ...(f.stackTrace ? { stackTrace: f.stackTrace } : {}),
    ...(f.stackTraceError ? { stackTraceError: f.stackTraceError } : {}),
  };
  return new Result({ status, reason, ...base, ...extra, ...stack });
}
