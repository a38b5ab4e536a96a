// result.ts: what happened to a sandboxee, as a value (Sandbox2's Result). run() resolves to it;
// it rejects only when the SDK itself fails.
import { constants } from 'node:os';
import type { StackTrace } from './stack-trace.js';

/**
 * How a sandboxee ended. OUTPUT_LIMIT: run() ended it because its stdout or stderr passed
 * `maxBuffer` (run.ts); EXTERNAL_KILL: Sandbox.kill(), or run()'s AbortSignal.
 */
export type Status =
  | 'OK'
  | 'VIOLATION'
  | 'SIGNALED'
  | 'TIMEOUT'
  | 'EXTERNAL_KILL'
  | 'OUTPUT_LIMIT'
  | 'SETUP_ERROR'
  | 'INTERNAL_ERROR';
const STATUSES: readonly Status[] = [
  'OK',
  'VIOLATION',
  'SIGNALED',
  'TIMEOUT',
  'EXTERNAL_KILL',
  'OUTPUT_LIMIT',
  'SETUP_ERROR',
  'INTERNAL_ERROR',
];
/** Where a Result's cpu and memory figures come from: the sandbox's cgroup (the whole tree,
 *  every process that ever ran in it), or wait4() rusage of the sandbox's init, which reaps and
 *  sums the whole tree before it exits ('none': nothing ran). */
export type Accounting = 'cgroup' | 'rusage' | 'none';
/** hook: the notify handler answered 'kill' (notify-hooks.ts). */
export type ViolationKind = 'syscall' | 'arch' | 'network' | 'hook';
export type Arch = 'x86_64' | 'i386' | 'x32' | 'aarch64' | 'unknown';

export interface Violation {
  kind: ViolationKind;
  /** Syscall name in the table of `arch` ("ptrace"), or "unknown(<nr>)". */
  syscall: string;
  nr: number;
  arch: Arch;
  /** The six raw arguments. In JSON (JSON.stringify of a Violation or a Result) they are decimal
   *  strings, as "18446744073709551615": a double cannot hold every 64-bit value. */
  args: bigint[];
  /** The calling task, in the host's pid view. */
  pid: number;
  /** For network violations: "127.0.0.1:80", "[::1]:443", "unix:/run/x.sock" and the like. */
  address?: string;
  /** For network violations: why ("denied by deny 10.0.0.0/8", "no allow rule matches", ...). */
  rule?: string;
}

export interface ResultFields {
  status: Status;
  reason: string;
  exitCode?: number;
  signal?: NodeJS.Signals | number;
  /** Milliseconds from runAsync() to the Result. */
  walltimeMs: number;
  /** User cpu of the whole process tree, in milliseconds (killed runs included; see `accounting`). */
  cpuUserMs: number;
  /** System cpu of the whole process tree, in milliseconds. */
  cpuSystemMs: number;
  /** Peak memory in KiB: the cgroup's memory.peak where it has the memory controller, else the
   *  largest resident set of any one process of the tree (rusage ru_maxrss). */
  maxRssKiB: number;
  violation?: Violation;
  pid?: number;
  /** Which isolation ran (Executor option `isolation`); absent in Results made before it existed. */
  isolation?: 'namespaces' | 'landlock';
  /** Where cpuUserMs, cpuSystemMs and maxRssKiB come from (absent in Results made before it existed). */
  accounting?: Accounting;
  /** The stack of the violating thread (violation) or of the target (timeout, kill), with its
   *  registers and program name, unless turned off (Executor option `stackTraces`). */
  stackTrace?: StackTrace;
  /** Why a stack trace that was due is missing (the unwinder failed, timed out, ...). */
  stackTraceError?: string;
}

// The first name of each number wins: SIGABRT rather than its alias SIGIOT.
const signalNames = new Map<number, NodeJS.Signals>();
for (const [name, n] of Object.entries(constants.signals))
  if (!signalNames.has(n)) signalNames.set(n, name as NodeJS.Signals);

export function signalName(n: number): NodeJS.Signals | number {
  return signalNames.get(n) ?? n;
}

export class Result implements ResultFields {
  readonly status: Status;
  readonly reason: string;
  readonly exitCode?: number;
  readonly signal?: NodeJS.Signals | number;
  readonly walltimeMs: number;
  readonly cpuUserMs: number;
  readonly cpuSystemMs: number;
  readonly maxRssKiB: number;
  readonly violation?: Violation;
  readonly pid?: number;
  readonly isolation?: 'namespaces' | 'landlock';
  readonly accounting?: Accounting;
  readonly stackTrace?: StackTrace;
  readonly stackTraceError?: string;

  constructor(f: ResultFields) {
    this.status = f.status;
    this.reason = f.reason;
    if (f.exitCode !== undefined) this.exitCode = f.exitCode;
    if (f.signal !== undefined) this.signal = f.signal;
    this.walltimeMs = f.walltimeMs;
    this.cpuUserMs = f.cpuUserMs;
    this.cpuSystemMs = f.cpuSystemMs;
    this.maxRssKiB = f.maxRssKiB;
    if (f.violation) this.violation = jsonSafeViolation(f.violation);
    if (f.pid !== undefined) this.pid = f.pid;
    if (f.isolation !== undefined) this.isolation = f.isolation;
    if (f.accounting !== undefined) this.accounting = f.accounting;
    if (f.stackTrace !== undefined) this.stackTrace = f.stackTrace;
    if (f.stackTraceError !== undefined) this.stackTraceError = f.stackTraceError;
    Object.freeze(this);
  }

  get ok(): boolean {
    return this.status === 'OK';
  }

  /** One readable line. */
  toString(): string {
    const parts: string[] = [this.status];
    if (this.status === 'OK') parts.push(`exit code ${this.exitCode}`);
    if (this.violation) {
      const v = this.violation;
      const args = v.args.map((a) => `0x${a.toString(16)}`).join(', ');
      parts.push(
        `${v.kind} violation: [${v.arch}] ${v.syscall} (${v.nr})(${args})${v.address ? ` to ${v.address}` : ''}${v.rule ? ` (${v.rule})` : ''} by pid ${v.pid}`,
      );
    } else if (this.status !== 'OK' && this.reason) parts.push(this.reason);
    if (this.status === 'SIGNALED') parts.push(`signal ${this.signal}`);
    parts.push(
      `walltime ${this.walltimeMs.toFixed(1)} ms`,
      `cpu ${(this.cpuUserMs + this.cpuSystemMs).toFixed(1)} ms`,
      `max rss ${this.maxRssKiB} KiB`,
    );
    return parts.join(', ');
  }

  /** The CLI's --result-json object (bigints as decimal strings, absent fields as null;
   *  times rounded to the microsecond). Result.fromJSON() reads it back. */
  toJSON(): ResultJSON {
    return {
      status: this.status,
      reason: this.reason,
      exitCode: this.exitCode ?? null,
      signal: this.signal ?? null,
      walltimeMs: round(this.walltimeMs),
      cpuUserMs: round(this.cpuUserMs),
      cpuSystemMs: round(this.cpuSystemMs),
      maxRssKiB: this.maxRssKiB,
      pid: this.pid ?? null,
      isolation: this.isolation ?? null,
      accounting: this.accounting ?? null,
      violation: this.violation ? violationToJSON(this.violation) : null,
      stackTrace: this.stackTrace ?? null,
      stackTraceError: this.stackTraceError ?? null,
    };
  }

  /** A Result from its toJSON() form (e.g. JSON.parse of a stored or sent Result). Throws
   *  TypeError naming the first field that is wrong. */
  static fromJSON(json: unknown): Result {
    const o = json as Partial<Record<keyof ResultJSON, unknown>>;
    if (o === null || typeof o !== 'object') throw new TypeError('Result.fromJSON: expected an object');
    const num = (k: keyof ResultJSON, v: unknown = o[k]) => {
      if (typeof v !== 'number' || !Number.isFinite(v))
        throw new TypeError(`Result.fromJSON: ${k} must be a number, got ${JSON.stringify(v)}`);
      return v;
    };
    const opt = <T>(k: keyof ResultJSON, ok: (v: unknown) => v is T): T | undefined => {
      const v = o[k];
      if (v === null || v === undefined) return undefined;
      if (!ok(v)) throw new TypeError(`Result.fromJSON: bad ${k}: ${JSON.stringify(v)}`);
      return v;
    };
    if (!STATUSES.includes(o.status as Status))
      throw new TypeError(
        `Result.fromJSON: status must be one of ${STATUSES.join(', ')}, got ${JSON.stringify(o.status)}`,
      );
    if (typeof o.reason !== 'string') throw new TypeError('Result.fromJSON: reason must be a string');
    const isInt = (v: unknown): v is number => Number.isInteger(v);
    const violation = o.violation === null || o.violation === undefined ? undefined : violationFromJSON(o.violation);
    return new Result({
      status: o.status as Status,
      reason: o.reason,
      walltimeMs: num('walltimeMs'),
      cpuUserMs: num('cpuUserMs'),
      cpuSystemMs: num('cpuSystemMs'),
      maxRssKiB: num('maxRssKiB'),
      exitCode: opt('exitCode', isInt),
      signal: opt('signal', (v): v is NodeJS.Signals | number => typeof v === 'string' || isInt(v)),
      pid: opt('pid', isInt),
      isolation: opt('isolation', (v): v is 'namespaces' | 'landlock' => v === 'namespaces' || v === 'landlock'),
      accounting: opt('accounting', (v): v is Accounting => v === 'cgroup' || v === 'rusage' || v === 'none'),
      ...(violation ? { violation } : {}),
      stackTrace: opt('stackTrace', isStackTrace),
      stackTraceError: opt('stackTraceError', (v): v is string => typeof v === 'string'),
    });
  }
}

/** Result.toJSON()'s shape. */
export interface ResultJSON {
  status: Status;
  reason: string;
  exitCode: number | null;
  signal: NodeJS.Signals | number | null;
  walltimeMs: number;
  cpuUserMs: number;
  cpuSystemMs: number;
  maxRssKiB: number;
  pid: number | null;
  isolation: 'namespaces' | 'landlock' | null;
  accounting: Accounting | null;
  violation: ViolationJSON | null;
  stackTrace?: StackTrace | null;
  stackTraceError?: string | null;
}

function isStackTrace(v: unknown): v is StackTrace {
  const t = v as StackTrace;
  return (
    typeof t === 'object' &&
    t !== null &&
    Number.isInteger(t.tid) &&
    Array.isArray(t.frames) &&
    t.frames.every((f) => typeof f?.pc === 'string') &&
    typeof t.registers === 'object'
  );
}

/** A Violation in JSON: `args` as decimal strings. */
export type ViolationJSON = Omit<Violation, 'args'> & { args: string[] };

export function violationToJSON(v: Violation): ViolationJSON {
  return { ...v, args: v.args.map(String) };
}

/** A Violation from its JSON form (args as decimal strings, or numbers). */
export function violationFromJSON(json: unknown): Violation {
  const v = json as Record<string, unknown>;
  if (v === null || typeof v !== 'object') throw new TypeError('violationFromJSON: expected an object');
  if (
    !Array.isArray(v.args) ||
    v.args.some((a) => !(typeof a === 'string' && /^\d+$/.test(a)) && !Number.isSafeInteger(a))
  ) {
    throw new TypeError(`violationFromJSON: args must be decimal strings, got ${JSON.stringify(v.args)}`);
  }
  for (const k of ['kind', 'syscall', 'arch'] as const)
    if (typeof v[k] !== 'string') throw new TypeError(`violationFromJSON: ${k} must be a string`);
  for (const k of ['nr', 'pid'] as const)
    if (!Number.isInteger(v[k])) throw new TypeError(`violationFromJSON: ${k} must be an integer`);
  const out = { ...v, args: (v.args as Array<string | number>).map((a) => BigInt(a)) } as unknown as Violation;
  return jsonSafeViolation(out);
}

/** A frozen copy of `v` whose JSON form (a non-enumerable toJSON) has args as decimal strings,
 *  so that JSON.stringify({ violation }) works, as it does for the Result. */
function jsonSafeViolation(v: Violation): Violation {
  const copy = { ...v, args: [...v.args] };
  Object.defineProperty(copy, 'toJSON', { value: () => violationToJSON(copy), enumerable: false });
  Object.freeze(copy.args);
  return Object.freeze(copy);
}

function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}
