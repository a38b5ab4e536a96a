// Policies enforced on real sandboxees: each denial holds and is reported with the right syscall
// (through the seccomp user-notification monitor), errno rules return their errno, arg rules
// decide by argument, and the presets run real binaries.
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { PolicyBuilder } from '@sbx/executor';
import { ARG_32, JNE, ALLOW, LABEL } from '@sbx/executor/bpf';
import { ALWAYS_DENIED_PROBES, runCaptured, testcase } from './helpers.js';

/** The violations testcase's own needs, plus `extra`; everything else is a violation. */
function probePolicy(extra?: (b: PolicyBuilder) => void) {
  const b = new PolicyBuilder()
    .allowDynamicStartup()
    .allowSystemMalloc()
    .allowWrite()
    .allowExit()
    .allowSyscalls(['getrandom', 'set_robust_list', 'rseq', 'brk']);
  b.addLibrariesForBinary(testcase('violations'));
  extra?.(b);
  return b.build();
}

async function probe(name: string, extra?: (b: PolicyBuilder) => void) {
  return runCaptured([testcase('violations'), name], {
    policy: probePolicy(extra),
    executor: { limits: { walltime: 10 } },
  });
}

describe('always-on denials are violations reported with the syscall name', () => {
  const cases = ALWAYS_DENIED_PROBES;
  for (const [test, syscall] of cases) {
    it(`${test} -> VIOLATION ${syscall}`, async () => {
      const { result, stdout } = await probe(test, (b) => b.allowSyscalls(['unshare', 'clone', 'seccomp']));
      expect(result.status).toBe('VIOLATION');
      expect(result.violation?.kind).toBe('syscall');
      expect(result.violation?.syscall).toBe(syscall);
      expect(result.violation?.arch).toBe('x86_64');
      expect(result.violation?.args).toHaveLength(6);
      expect(stdout).toBe(''); // the call never returned
    });
  }

  it('ioctl TIOCSTI is a violation even when ioctl is allowed, also with high bits in the cmd', async () => {
    for (const t of ['tiocsti', 'tiocsti-high', 'tioclinux']) {
      const { result } = await probe(t, (b) => b.allowSyscall('ioctl'));
      expect(result.status, t).toBe('VIOLATION');
      expect(result.violation?.syscall).toBe('ioctl');
    }
  });

  // Some virtual machines (e.g. PVM guests) cannot run int 0x80 at all: the probe then dies of
  // SIGSEGV outside any sandbox too, and there is nothing for the filter to see.
  const int80Runs = spawnSync(testcase('violations'), ['int80']).signal === null;
  it.skipIf(!int80Runs)('int 0x80 (i386 getpid) is an arch violation labelled i386', async () => {
    const { result } = await probe('int80', (b) => b.allowSyscall('getpid'));
    expect(result.status).toBe('VIOLATION');
    expect(result.violation).toMatchObject({ kind: 'arch', arch: 'i386', syscall: 'getpid', nr: 20 });
  });

  it('an x32 syscall number is an arch violation labelled x32', async () => {
    const { result } = await probe('x32', (b) => b.allowSyscall('getpid'));
    expect(result.status).toBe('VIOLATION');
    expect(result.violation).toMatchObject({ kind: 'arch', arch: 'x32', syscall: 'getpid' });
  });
});

describe('errno answers let the program go on', () => {
  it('clone3 returns ENOSYS', async () => {
    const { result, stdout } = await probe('clone3');
    expect(result.status).toBe('OK');
    expect(stdout).toBe('clone3: errno ENOSYS\n');
  });

  it('io_uring_setup returns ENOSYS', async () => {
    const { result, stdout } = await probe('io_uring');
    expect(result.status).toBe('OK');
    expect(stdout).toBe('io_uring: errno ENOSYS\n');
  });

  it('blockSyscallWithErrno returns that errno', async () => {
    const { result, stdout } = await probe('sysinfo', (b) => b.blockSyscallWithErrno('sysinfo', 'EACCES'));
    expect(result.status).toBe('OK');
    expect(stdout).toBe('sysinfo: errno EACCES\n');
  });

  it('blockSyscallWithErrno can soften an always-on denial', async () => {
    const { result, stdout } = await probe('ptrace', (b) => b.blockSyscallWithErrno('ptrace', 'EPERM'));
    expect(result.status).toBe('OK');
    expect(stdout).toBe('ptrace: errno EPERM\n');
  });

  it('a syscall the policy does not mention is a violation', async () => {
    const { result, stdout } = await probe('sysinfo');
    expect(result.status).toBe('VIOLATION');
    expect(result.violation?.syscall).toBe('sysinfo');
    expect(stdout).toBe('');
  });
});

describe('argument rules', () => {
  // write only to fd 1: the probe's own report goes to fd 1.
  const writeFd1Only = () =>
    new PolicyBuilder()
      .allowDynamicStartup()
      .allowSystemMalloc()
      .allowExit()
      .allowSyscalls(['getrandom', 'set_robust_list', 'rseq'])
      .addPolicyOnSyscall('write', [ARG_32(0), JNE(1, 'end'), ALLOW, LABEL('end')])
      .addLibrariesForBinary(testcase('violations'))
      .build();

  it('write to fd 1 is allowed', async () => {
    const { result, stdout } = await runCaptured([testcase('violations'), 'write-fd1'], { policy: writeFd1Only() });
    expect(result.status).toBe('OK');
    expect(stdout).toBe('write-fd1: ok\n');
  });

  it('write to fd 2 is a violation with the fd in the args', async () => {
    const { result } = await runCaptured([testcase('violations'), 'write-fd2'], { policy: writeFd1Only() });
    expect(result.status).toBe('VIOLATION');
    expect(result.violation?.syscall).toBe('write');
    expect(result.violation?.args[0]).toBe(2n);
  });
});

describe('threads and presets', () => {
  it('a violation from a second thread is caught', async () => {
    const { result } = await probe('thread-ptrace', (b) =>
      b.allowSyscalls(['clone', 'mprotect', 'madvise', 'munmap', 'rt_sigprocmask', 'futex', 'set_robust_list', 'rseq']),
    );
    expect(result.status).toBe('VIOLATION');
    expect(result.violation?.syscall).toBe('ptrace');
  });

  it('a static binary runs under allowStaticStartup', async () => {
    const policy = new PolicyBuilder()
      .allowStaticStartup()
      .allowWrite()
      .allowExit()
      .allowStat()
      .allowSyscalls(['brk'])
      .build();
    const { result, stdout } = await runCaptured([testcase('static_hello')], { policy });
    expect(result.status, result.toString()).toBe('OK');
    expect(stdout).toBe('hello from a static binary\n');
  });

  it('a dynamic binary runs under allowDynamicStartup with its libraries', async () => {
    const policy = new PolicyBuilder()
      .allowDynamicStartup()
      .allowSystemMalloc()
      .allowWrite()
      .allowExit()
      .allowSyscalls(['getrandom', 'rseq', 'set_robust_list'])
      .addLibrariesForBinary('/bin/echo')
      .build();
    const { result, stdout } = await runCaptured(['/bin/echo', 'dynamic'], { policy });
    expect(result.status, result.toString()).toBe('OK');
    expect(stdout).toBe('dynamic\n');
  });

  it('a violation kills the whole tree, not just the caller', async () => {
    const probeBin = testcase('violations');
    const policy = new PolicyBuilder()
      .defaultAction('allow')
      .addDirectory('/usr')
      .addDirectory('/bin')
      .addDirectory('/lib')
      .addDirectory('/lib64')
      .addFile(probeBin)
      .build();
    const t0 = performance.now();
    const { result } = await runCaptured(['/bin/sh', '-c', `sleep 30 & ${probeBin} ptrace; sleep 30`], { policy });
    expect(result.status, result.toString()).toBe('VIOLATION');
    expect(result.violation?.syscall).toBe('ptrace');
    expect(performance.now() - t0).toBeLessThan(10_000);
  });
});

describe('without a monitor (KILL_PROCESS)', () => {
  it('a violation is still a VIOLATION, reported as SIGSYS with the syscall unknown', async () => {
    const { result, stdout } = await runCaptured([testcase('violations'), 'ptrace'], {
      policy: probePolicy(),
      executor: { monitor: 'kill' },
    });
    expect(result.status).toBe('VIOLATION');
    expect(result.signal).toBe('SIGSYS');
    expect(result.violation?.syscall).toMatch(/unknown \(SIGSYS, no monitor\)/);
    expect(stdout).toBe('');
  });

  it('an allowed program runs normally', async () => {
    const { result, stdout } = await runCaptured([testcase('violations'), 'none'], {
      policy: probePolicy(),
      executor: { monitor: 'kill' },
    });
    expect(result.status).toBe('OK');
    expect(stdout).toBe('none: ok\n');
  });
});
