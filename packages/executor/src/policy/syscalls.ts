/**
 * Syscall tables: name <-> number per architecture, errno names, and "did you mean" suggestions.
 * The data files next to this one are generated from kernel headers by scripts/gen-syscalls.mjs.
 */
import { SYSCALLS_X86_64 } from './syscalls-x86_64.js';
import { SYSCALLS_AARCH64 } from './syscalls-aarch64.js';
import { SYSCALLS_I386 } from './syscalls-i386.js';
import { ERRNO_TABLE } from './errnos.js';

/** Architectures a policy can be compiled for. */
export type Arch = 'x86_64' | 'aarch64';
/** Architectures whose syscall numbers sbx can name (i386 only for reporting arch violations). */
export type TableArch = Arch | 'i386';

/** One architecture's syscall table. */
export interface SyscallTable {
  readonly arch: TableArch;
  readonly byName: ReadonlyMap<string, number>;
  readonly byNumber: ReadonlyMap<number, string>;
  /** The highest number in the table. */
  readonly maxNr: number;
}

function makeTable(arch: TableArch, rows: ReadonlyArray<readonly [string, number]>): SyscallTable {
  const byName = new Map<string, number>();
  const byNumber = new Map<number, string>();
  let maxNr = 0;
  for (const [name, nr] of rows) {
    byName.set(name, nr);
    if (!byNumber.has(nr)) byNumber.set(nr, name);
    if (nr > maxNr) maxNr = nr;
  }
  return Object.freeze({ arch, byName, byNumber, maxNr });
}

const ROWS: Readonly<Record<TableArch, ReadonlyArray<readonly [string, number]>>> = {
  x86_64: SYSCALLS_X86_64,
  aarch64: SYSCALLS_AARCH64,
  i386: SYSCALLS_I386,
};
const built: Partial<Record<TableArch, SyscallTable>> = {};
/** A table is built the first time it is asked for: most processes only ever need the host's. */
function table(arch: TableArch): SyscallTable {
  return (built[arch] ??= makeTable(arch, ROWS[arch]));
}

export const SYSCALL_TABLES: Readonly<Record<TableArch, SyscallTable>> = Object.freeze({
  get x86_64() {
    return table('x86_64');
  },
  get aarch64() {
    return table('aarch64');
  },
  get i386() {
    return table('i386');
  },
});

/** The syscall number of `name` on `arch`, or undefined. */
export function syscallNumber(arch: TableArch, name: string): number | undefined {
  return SYSCALL_TABLES[arch].byName.get(name);
}

/** The name of syscall `nr` on `arch`, or undefined. */
export function syscallName(arch: TableArch, nr: number): string | undefined {
  return SYSCALL_TABLES[arch].byNumber.get(nr);
}

/** The architecture this process runs on, when sbx supports it. */
export function hostArch(): Arch | undefined {
  if (process.arch === 'x64') return 'x86_64';
  if (process.arch === 'arm64') return 'aarch64';
  return undefined;
}

const errnoByName = new Map<string, number>(ERRNO_TABLE);
const errnoByValue = new Map<number, string>();
for (const [name, value] of ERRNO_TABLE) if (!errnoByValue.has(value)) errnoByValue.set(value, name);

/** The value of an errno name such as 'EPERM', or undefined. */
export function errnoNumber(name: string): number | undefined {
  return errnoByName.get(name);
}

/** The name of an errno value (first name for aliases), or undefined. */
export function errnoName(value: number): string | undefined {
  return errnoByValue.get(value);
}

function editDistance(a: string, b: string): number {
  const prev = new Array<number>(b.length + 1);
  for (let j = 0; j <= b.length; j++) prev[j] = j;
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0]!;
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const up = prev[j]!;
      prev[j] = Math.min(up + 1, prev[j - 1]! + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = up;
    }
  }
  return prev[b.length]!;
}

/** Up to `max` known names closest to `name` (edit distance, then shared prefix/substring). */
export function suggestNames(name: string, known: Iterable<string>, max = 3): string[] {
  const scored: Array<[string, number]> = [];
  for (const k of known) {
    let d = editDistance(name, k);
    if (k.includes(name) || name.includes(k)) d = Math.min(d, 1 + Math.abs(k.length - name.length) / 4);
    scored.push([k, d]);
  }
  scored.sort((x, y) => x[1] - y[1] || (x[0] < y[0] ? -1 : 1));
  const limit = Math.max(2, Math.ceil(name.length / 2));
  return scored
    .filter(([, d]) => d <= limit)
    .slice(0, max)
    .map(([k]) => k);
}
