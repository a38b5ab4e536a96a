// result.ts: what happened to a sandboxee, as a value (Sandbox2's Result). run() resolves to it;
// it rejects only when the SDK itself fails.
import { constants } from 'node:os';

export type Status = 'OK' | 'VIOLATION' | 'SIGNALED' | 'TIMEOUT' | 'EXTERNAL_KILL' | 'SETUP_ERROR' | 'INTERNAL_ERROR';
export type ViolationKind = 'syscall' | 'arch' | 'network';
export type Arch = 'x86_64' | 'i386' | 'x32' | 'aarch64' | 'unknown';

export interface Violation {
  kind: ViolationKind;
  /** Syscall name in the table of `arch` ("ptrace"), or "unknown(<nr>)". */
  syscall: string;
  nr: number;
  arch: Arch;
  /** The six raw arguments. */
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
  walltimeMs: number;
  cpuUserMs: number;
  cpuSystemMs: number;
  maxRssKiB: number;
  violation?: Violation;
  pid?: number;
  /** Which isolation ran (Executor option `isolation`); absent in Results made before it existed. */
  isolation?: 'namespaces' | 'landlock';
}

// The first name of each number wins: SIGABRT rather than its alias SIGIOT.
const signalNames = new Map<number, NodeJS.Signals>();
for (const [name, n] of Object.entries(constants.signals)) if (!signalNames.has(n)) signalNames.set(n, name as NodeJS.Signals);

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

  constructor(f: ResultFields) {
    this.status = f.status;
    this.reason = f.reason;
    if (f.exitCode !== undefined) this.exitCode = f.exitCode;
    if (f.signal !== undefined) this.signal = f.signal;
    this.walltimeMs = f.walltimeMs;
    this.cpuUserMs = f.cpuUserMs;
    this.cpuSystemMs = f.cpuSystemMs;
    this.maxRssKiB = f.maxRssKiB;
    if (f.violation) this.violation = f.violation;
    if (f.pid !== undefined) this.pid = f.pid;
    if (f.isolation !== undefined) this.isolation = f.isolation;
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
      parts.push(`${v.kind} violation: [${v.arch}] ${v.syscall} (${v.nr})(${args})${v.address ? ` to ${v.address}` : ''}${v.rule ? ` (${v.rule})` : ''} by pid ${v.pid}`);
    } else if (this.status !== 'OK' && this.reason) parts.push(this.reason);
    if (this.status === 'SIGNALED') parts.push(`signal ${this.signal}`);
    parts.push(`walltime ${this.walltimeMs.toFixed(1)} ms`, `cpu ${(this.cpuUserMs + this.cpuSystemMs).toFixed(1)} ms`, `max rss ${this.maxRssKiB} KiB`);
    return parts.join(', ');
  }

  /** The CLI's --result-json object (bigints as decimal strings). */
  toJSON(): Record<string, unknown> {
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
      violation: this.violation ? { ...this.violation, args: this.violation.args.map(String) } : null,
    };
  }
}

function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}
