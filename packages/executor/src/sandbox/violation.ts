// violation.ts: a monitor's violation report as the Violation a Result carries.
import type { MonitorEvent } from '@sbx/client/internal';
import { syscallName } from '../policy/syscalls.js';
import type { Arch, Violation } from './result.js';

const AUDIT_ARCH = { x86_64: 0xc000003e, i386: 0x40000003, aarch64: 0xc00000b7 } as const;
const X32_BIT = 0x40000000;

/** The syscall, named in the table of the arch it was made in. */
export function describeViolation(e: MonitorEvent): Violation {
  let arch: Arch = 'unknown';
  let kind: Violation['kind'] = 'arch';
  let name: string | undefined;
  if (e.arch === AUDIT_ARCH.x86_64 && e.nr & X32_BIT) arch = 'x32';
  else if (e.arch === AUDIT_ARCH.x86_64) {
    arch = 'x86_64';
    kind = 'syscall';
    name = syscallName('x86_64', e.nr);
  } else if (e.arch === AUDIT_ARCH.i386) {
    arch = 'i386';
    name = syscallName('i386', e.nr);
  } else if (e.arch === AUDIT_ARCH.aarch64) {
    arch = 'aarch64';
    kind = process.arch === 'arm64' ? 'syscall' : 'arch';
    name = syscallName('aarch64', e.nr);
  }
  if (arch === 'x32') name = syscallName('x86_64', e.nr & ~X32_BIT);
  return { kind, syscall: name ?? `unknown(${e.nr})`, nr: e.nr, arch, args: e.args, pid: e.pid };
}
