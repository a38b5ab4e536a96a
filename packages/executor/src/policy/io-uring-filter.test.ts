import { describe, expect, it } from 'vitest';
import { AUDIT_ARCH_AARCH64, AUDIT_ARCH_I386, AUDIT_ARCH_X86_64, X32_SYSCALL_BIT, decodeProgram } from './bpf.js';
import { evaluate, validateProgram } from './evaluator.js';
import { ioUringDenialInsns, ioUringDenialProgram } from './io-uring-filter.js';
import { SYSCALL_TABLES } from './syscalls.js';

const IO_URING = ['io_uring_setup', 'io_uring_enter', 'io_uring_register'];

describe('ioUringDenialProgram (the Node forkserver runs under it from its exec)', () => {
  for (const [arch, auditArch] of [
    ['x86_64', AUDIT_ARCH_X86_64],
    ['aarch64', AUDIT_ARCH_AARCH64],
  ] as const) {
    it(`${arch}: io_uring_* get ENOSYS, every other syscall is allowed`, () => {
      const insns = ioUringDenialInsns(arch);
      expect(validateProgram(insns)).toEqual([]);
      expect(decodeProgram(ioUringDenialProgram(arch))).toEqual(insns);
      for (const [name, nr] of SYSCALL_TABLES[arch].byName) {
        const r = evaluate(insns, { arch: auditArch, nr });
        if (IO_URING.includes(name)) expect(r, name).toMatchObject({ action: 'ERRNO', data: 38 });
        else expect(r.action, name).toBe('ALLOW');
      }
    });
  }

  it('x86_64: the x32 and i386 forms of io_uring are denied too, and nothing needs an argument', () => {
    const insns = ioUringDenialInsns('x86_64');
    for (const nr of [425, 426, 427]) {
      expect(evaluate(insns, { arch: AUDIT_ARCH_X86_64, nr: nr | X32_SYSCALL_BIT })).toMatchObject({
        action: 'ERRNO',
        data: 38,
        readArgs: false,
      });
      expect(evaluate(insns, { arch: AUDIT_ARCH_I386, nr })).toMatchObject({ action: 'ERRNO', data: 38 });
    }
    expect(evaluate(insns, { arch: AUDIT_ARCH_X86_64, nr: 424 }).action).toBe('ALLOW');
    expect(evaluate(insns, { arch: AUDIT_ARCH_X86_64, nr: 428 }).action).toBe('ALLOW');
  });
});
