// stack-trace.ts: a symbolized native stack of one sandboxee thread, with its registers and
// program name (Sandbox2's stack traces). The work is done by sbx-unwind (native/unwind), which
// confines itself to the sandbox's namespaces and the target's identity, under the seccomp policy
// built here, before it reads anything the sandboxee controls (docs/security.md, "Stack traces").
import { execFile } from 'node:child_process';
import { statSync } from 'node:fs';
import { nativeExecutablePath } from '@sbx/client/internal';
import { ALLOW, ARG_32, JEQ, JNE, JSET, LABEL } from '../policy/bpf.js';
import { compilePolicy } from '../policy/compiler.js';
import { PolicyBuilder } from '../policy/policy-builder.js';

/** When a Sandbox collects a stack trace of its sandboxee (Executor option `stackTraces`). */
export interface StackTraceOptions {
  /** Of the violating thread, on a violation (default true). */
  onViolation?: boolean;
  /** Of the target's main thread, when the walltime limit is reached (default true). */
  onTimeout?: boolean;
  /** Of the target's main thread, on Sandbox.kill() (default true). */
  onKill?: boolean;
  /** How long the unwinder may take, in ms (default 2000); the sandboxee is stopped meanwhile. */
  timeoutMs?: number;
  /** At most this many frames (default 64). */
  maxFrames?: number;
}

export interface StackFrame {
  /** The frame's program counter (a return address above frame 0), hex. */
  pc: string;
  /** The ELF file the pc lies in, as the sandboxee sees it; '[jit]' for JIT code named from the
   *  sandboxee's perf map (Node with --perf-basic-prof). */
  module?: string;
  /** The symbol containing the pc (as in the ELF symbol table: C++ names are not demangled). */
  symbol?: string;
  /** pc minus the symbol's start. */
  offset?: number;
}

/** A thread's stack and forensics. */
export interface StackTrace {
  /** Why it was taken. */
  trigger: 'violation' | 'timeout' | 'kill' | 'request';
  /** The thread, in the host's pid view. */
  tid: number;
  /** /proc/<pid>/comm of its process. */
  comm?: string;
  /** /proc/<pid>/exe of its process, as the sandboxee sees it. */
  exe?: string;
  /** Instruction and stack pointer, hex. */
  ip: string;
  sp: string;
  /** Every general register (names as in the kernel's user_regs), hex. */
  registers: Record<string, string>;
  frames: StackFrame[];
  /** Present when the unwinding stopped early (bad unwind data, unreadable memory). */
  incomplete?: string;
}

/** Whether a sandbox of this executor takes a stack at its walltime limit (namespaces only). */
export function traceOnTimeout(ex: {
  stackTraces: ResolvedStackTraceOptions;
  isolation: string;
  limits: { walltime: number };
}): boolean {
  return ex.stackTraces.onTimeout && ex.isolation === 'namespaces' && ex.limits.walltime > 0;
}

/** The resolved Executor option: false when no trace is collected at all. */
export type ResolvedStackTraceOptions = Required<StackTraceOptions>;

export function resolveStackTraceOptions(o: StackTraceOptions | boolean | undefined): ResolvedStackTraceOptions {
  if (o !== undefined && typeof o !== 'boolean' && (o === null || typeof o !== 'object'))
    throw new TypeError('Executor: stackTraces must be a boolean or { onViolation, onTimeout, onKill, timeoutMs }');
  const all = o !== false;
  const obj = typeof o === 'object' ? o : {};
  const flag = (k: 'onViolation' | 'onTimeout' | 'onKill') => {
    const v = obj[k];
    if (v !== undefined && typeof v !== 'boolean') throw new TypeError(`Executor: stackTraces.${k} must be a boolean`);
    return v ?? all;
  };
  const int = (k: 'timeoutMs' | 'maxFrames', dflt: number, max: number) => {
    const v = obj[k];
    if (v !== undefined && !(Number.isInteger(v) && v > 0 && v <= max))
      throw new TypeError(`Executor: stackTraces.${k} must be an integer in 1..${max}, got ${String(v)}`);
    return v ?? dflt;
  };
  return Object.freeze({
    onViolation: flag('onViolation'),
    onTimeout: flag('onTimeout'),
    onKill: flag('onKill'),
    timeoutMs: int('timeoutMs', 2000, 60_000),
    maxFrames: int('maxFrames', 64, 1024),
  });
}

export interface CollectRequest {
  /** The thread to unwind (host pid view). */
  tid: number;
  /** Host pid of a process in the sandbox's user namespace (its target), alive during the call. */
  sandboxPid: number;
  trigger: StackTrace['trigger'];
  /** SIGSTOP the thread's process first (it is ended afterwards anyway). */
  stopProcess: boolean;
  timeoutMs: number;
  maxFrames: number;
  /** Test hook: a path the confined unwinder tries to open (its outcome in `probe`). */
  probePath?: string;
}

export type CollectOutcome =
  | { ok: true; trace: StackTrace; probe?: string }
  | { ok: false; error: string; probe?: string };

/** x86_64 and aarch64 names of the stack and instruction pointers among `registers`. */
const IP_SP: Record<string, [string, string]> = { x64: ['rip', 'rsp'], arm64: ['pc', 'sp'] };

/**
 * Runs the confined unwinder against `tid`. Never rejects: a failure (no libdw build, the thread
 * gone, the unwinder killed by its policy or its time limit) is an outcome with the reason.
 */
export function collectStackTrace(req: CollectRequest): Promise<CollectOutcome> {
  let bin: string;
  let ns: { dev: bigint; ino: bigint };
  let filter: string;
  try {
    bin = unwinderPath();
    ns = statSync(`/proc/${req.sandboxPid}/ns/user`, { bigint: true });
    filter = unwinderFilter(req.tid).toString('hex');
  } catch (err) {
    return Promise.resolve({ ok: false, error: (err as Error).message });
  }
  const args = [String(req.tid), String(ns.dev), String(ns.ino), String(req.maxFrames), filter];
  if (req.probePath !== undefined) args.push(req.probePath);
  return new Promise((resolve) => {
    execFile(
      bin,
      args,
      {
        env: req.stopProcess ? { SBX_UNWIND_STOP: '1' } : {},
        timeout: req.timeoutMs,
        killSignal: 'SIGKILL',
        maxBuffer: 1 << 20,
        encoding: 'utf8',
      },
      (err, stdout) => resolve(parseOutput(req, stdout, err)),
    );
  });
}

function parseOutput(
  req: CollectRequest,
  stdout: string,
  err: (Error & { signal?: string | null; killed?: boolean }) | null,
): CollectOutcome {
  const registers: Record<string, string> = {};
  const frames: StackFrame[] = [];
  let comm: string | undefined;
  let exe: string | undefined;
  let error: string | undefined;
  let incomplete: string | undefined;
  let probe: string | undefined;
  const jit: Array<[number, string]> = [];
  for (const line of stdout.split('\n')) {
    const f = line.split('\t');
    if (f[0] === 'reg' && f.length === 3) registers[f[1]!] = f[2]!;
    else if (f[0] === 'frame' && f.length === 5) {
      const frame: StackFrame = { pc: f[1]! };
      if (f[2]) frame.module = f[2];
      if (f[3]) {
        frame.symbol = f[3];
        frame.offset = Number(f[4]);
      }
      frames.push(frame);
    } else if (f[0] === 'comm') comm = f.slice(1).join('\t');
    else if (f[0] === 'exe') exe = f.slice(1).join('\t');
    else if (f[0] === 'error') error = f.slice(1).join('\t');
    else if (f[0] === 'end') incomplete = f.slice(1).join('\t');
    else if (f[0] === 'probe') probe = f[1];
    else if (f[0] === 'jit' && f.length >= 3) jit.push([Number(f[1]), f.slice(2).join('\t')]);
  }
  // JIT code (Node run with --perf-basic-prof): named from the sandboxee's perf map.
  for (const [i, name] of jit) {
    const frame = frames[i];
    if (frame && !frame.symbol) Object.assign(frame, { module: '[jit]', symbol: name, offset: 0 });
  }
  const extra = probe !== undefined ? { probe } : {};
  if (err && !error) {
    error =
      err.killed && err.signal === 'SIGKILL'
        ? `the unwinder did not finish within ${req.timeoutMs} ms`
        : err.signal === 'SIGSYS'
          ? 'the unwinder was stopped by its seccomp policy'
          : `the unwinder failed: ${err.message.split('\n')[0]}`;
  }
  if (error) return { ok: false, error, ...extra };
  if (frames.length === 0) return { ok: false, error: 'the unwinder found no frame', ...extra };
  if (frames.length >= req.maxFrames) incomplete ??= `cut at ${req.maxFrames} frames`;
  const [ipName, spName] = IP_SP[process.arch] ?? ['pc', 'sp'];
  const trace: StackTrace = {
    trigger: req.trigger,
    tid: req.tid,
    ...(comm !== undefined ? { comm } : {}),
    ...(exe !== undefined ? { exe } : {}),
    ip: registers[ipName] ?? frames[0]!.pc,
    sp: registers[spName] ?? '0x0',
    registers,
    frames,
    ...(incomplete ? { incomplete } : {}),
  };
  return { ok: true, trace, ...extra };
}

let cachedPath: string | undefined;
function unwinderPath(): string {
  return (cachedPath ??= process.env.SBX_UNWIND_PATH || nativeExecutablePath('unwind/sbx-unwind'));
}

const O_WRITE_OR_CREATE = 0x3 | 0x40 | 0x200 | 0x400 | 0x400000; // O_ACCMODE|O_CREAT|O_TRUNC|O_APPEND|__O_TMPFILE
const PROT_EXEC = 0x4;

/**
 * The unwinder's seccomp policy, once it holds the thread stopped: read-only opens (in the
 * sandbox's mount namespace, with the target's uid), memory reads of `tid` only, output on
 * stdout/stderr, memory management without PROT_EXEC. No ptrace (sbx denies it always): the
 * thread is detached by the unwinder's exit. Everything else kills it.
 */
export function unwinderFilter(tid: number): Buffer {
  const b = new PolicyBuilder();
  // open() exists on x86_64 only (its flags are arg 1).
  if (process.arch === 'x64')
    b.addPolicyOnSyscall('open', [ARG_32(1), JSET(O_WRITE_OR_CREATE, 'deny'), ALLOW, LABEL('deny')]);
  const policy = b
    .allowRead()
    .allowStat()
    .allowExit()
    .allowSyscalls(['close', 'lseek', 'brk', 'munmap', 'mremap', 'madvise', 'futex', 'getpid', 'gettid'])
    .allowSyscalls(['rt_sigprocmask', 'readlink', 'readlinkat', 'getdents64', 'fcntl'])
    .addPolicyOnSyscall('openat', [ARG_32(2), JSET(O_WRITE_OR_CREATE, 'deny'), ALLOW, LABEL('deny')])
    .addPolicyOnSyscalls(['mmap', 'mprotect'], [ARG_32(2), JSET(PROT_EXEC, 'x'), ALLOW, LABEL('x')])
    .addPolicyOnSyscalls(['write', 'writev'], [ARG_32(0), JEQ(1, 'w'), JNE(2, 'no'), LABEL('w'), ALLOW, LABEL('no')])
    .addPolicyOnSyscall('process_vm_readv', [ARG_32(0), JNE(tid, 'no'), ALLOW, LABEL('no')])
    .build();
  const compiled = compilePolicy(policy, { monitor: false, execPrologue: false, cache: false });
  return Buffer.from(compiled.program.buffer, compiled.program.byteOffset, compiled.program.byteLength);
}

/** A trace as text, one frame a line (gdb-like). */
export function formatStackTrace(t: StackTrace): string {
  const head = `thread ${t.tid}${t.comm ? ` (${t.comm})` : ''}${t.exe ? ` ${t.exe}` : ''}: ip ${t.ip} sp ${t.sp}`;
  const lines = t.frames.map(
    (f, i) =>
      `#${String(i).padEnd(2)} ${f.pc} ${f.symbol ? `${f.symbol}+0x${(f.offset ?? 0).toString(16)}` : '??'}${f.module ? ` (${f.module})` : ''}`,
  );
  if (t.incomplete) lines.push(`   (incomplete: ${t.incomplete})`);
  return [head, ...lines].join('\n');
}
