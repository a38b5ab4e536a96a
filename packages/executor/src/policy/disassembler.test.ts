import { describe, expect, it } from 'vitest';
import { ALLOW, ARG_32, ERRNO, JEQ, LABEL } from './bpf.js';
import { compilePolicy } from './compiler.js';
import { describeRet, disassemble } from './disassembler.js';
import { PolicyBuilder } from './policy-builder.js';

describe('disassemble()', () => {
  const policy = new PolicyBuilder({ arch: 'x86_64' })
    .allowSyscalls(['write', 'exit_group'])
    .addPolicyOnSyscall('openat', [ARG_32(2), JEQ(0, 'ro'), ERRNO(30), LABEL('ro'), ALLOW])
    .blockSyscallWithErrno('uname', 'EPERM')
    .build();

  it('prints one line per instruction, naming syscalls compared against nr', () => {
    const c = compilePolicy(policy, { monitor: true });
    const text = disassemble(c.insns);
    const lines = text.trimEnd().split('\n');
    expect(lines).toHaveLength(c.length);
    expect(lines[0]).toBe('0: ld arch'.padStart(lines[0]!.length));
    expect(text).toMatch(/jeq #0xc000003e \(AUDIT_ARCH_X86_64\)/);
    expect(text).toMatch(/ld nr/);
    expect(text).toMatch(/jge #0x\w+ \((write|openat|uname|exit_group)\)/);
    expect(text).toMatch(/ld args\[2\]_lo/);
    expect(text).toMatch(/ret ERRNO\(EROFS\)/);
    expect(text).toMatch(/ret ERRNO\(EPERM\)/);
    expect(text).toMatch(/ret ALLOW/);
    expect(text).toMatch(/ret USER_NOTIF\(SYSCALL_VIOLATION\)/);
    expect(text).toMatch(/ret USER_NOTIF\(ARCH_VIOLATION\)/);
    expect(text).toMatch(/ret USER_NOTIF\(EXEC\)/);
    // An argument compare is not annotated with a syscall name.
    expect(text).not.toMatch(/jeq #0x0 \(read\)/);
  });

  it('names linear-dispatch compares and kill returns', () => {
    const text = disassemble(compilePolicy(policy, { dispatch: 'linear' }).program);
    expect(text).toMatch(/jeq #0x1 \(write\)/);
    expect(text).toMatch(/jeq #0xe7 \(exit_group\)/);
    expect(text).toMatch(/ret KILL_PROCESS/);
  });

  it('uses the aarch64 table when asked', () => {
    const p = new PolicyBuilder({ arch: 'aarch64' }).allowSyscall('openat').build();
    expect(disassemble(compilePolicy(p, { dispatch: 'linear' }).insns, { arch: 'aarch64' })).toMatch(
      /jeq #0x38 \(openat\)/,
    );
  });
});

describe('describeRet()', () => {
  it('names actions', () => {
    expect(describeRet(0x7fff0000)).toBe('ALLOW');
    expect(describeRet(0x50001)).toBe('ERRNO(EPERM)');
    expect(describeRet(0x80000000)).toBe('KILL_PROCESS');
    expect(describeRet(0x7fc00000)).toBe('USER_NOTIF');
    expect(describeRet(0x7ffc0000)).toBe('LOG');
    expect(describeRet(0x30000)).toBe('TRAP');
  });
});
