// result-of.test.ts: the facts → Result step over plain fact objects (no sandbox; the real
// sandboxes that produce these facts are in test/).
import { describe, expect, it } from 'vitest';
import { resultOf, type SandboxFacts } from './result-of.js';
import type { Violation } from './result.js';

const exitedWith = (status: number, timedOut = false) => ({
  pid: 42,
  status,
  utimeUs: 3000,
  stimeUs: 1000,
  maxRssKiB: 512,
  timedOut,
});

/** A sandbox that ran and exited 0, with no cgroup. */
function facts(over: Partial<SandboxFacts> = {}): SandboxFacts {
  return {
    walltimeMs: 7.5,
    exited: exitedWith(0),
    targetStatus: null,
    usage: null,
    hostPid: 42,
    isolation: 'namespaces',
    internal: null,
    setupError: null,
    killedAs: null,
    violation: null,
    timedOut: false,
    monitored: true,
    beforeExec: true,
    oom: false,
    walltimeLimitS: 5,
    memoryLimitBytes: null,
    ...over,
  };
}

const violation: Violation = {
  kind: 'syscall',
  syscall: 'ptrace',
  nr: 101,
  arch: 'x86_64',
  args: [0n, 0n, 0n, 0n, 0n, 0n],
  pid: 43,
};

describe('resultOf', () => {
  it('an exit: OK with its code, rusage as accounting', () => {
    const r = resultOf(facts({ exited: exitedWith(3 << 8) }));
    expect(r.status).toBe('OK');
    expect(r.exitCode).toBe(3);
    expect(r.accounting).toBe('rusage');
    expect(r.cpuUserMs).toBe(3);
    expect(r.cpuSystemMs).toBe(1);
    expect(r.pid).toBe(42);
    expect(r.walltimeMs).toBe(7.5);
  });

  it("the init's status of the target wins over the forkserver's status of the init", () => {
    const r = resultOf(facts({ exited: exitedWith(0), targetStatus: 9 }));
    expect(r.status).toBe('SIGNALED');
    expect(r.signal).toBe('SIGKILL');
  });

  it('cgroup counters are preferred', () => {
    const r = resultOf(facts({ usage: { cpuUserMs: 10, cpuSystemMs: 20, peakKiB: 2048 } }));
    expect([r.accounting, r.cpuUserMs, r.cpuSystemMs, r.maxRssKiB]).toEqual(['cgroup', 10, 20, 2048]);
  });

  it('nothing started: SETUP_ERROR with the message, no pid, accounting none', () => {
    const r = resultOf(facts({ exited: null, hostPid: 0, setupError: 'mount: boom' }));
    expect(r.status).toBe('SETUP_ERROR');
    expect(r.reason).toBe('mount: boom');
    expect(r.pid).toBeUndefined();
    expect(r.accounting).toBe('none');
  });

  it('precedence: internal > setup > violation > timeout > kill > signal', () => {
    const all = facts({
      internal: new Error('lost the forkserver'),
      setupError: 'ids: x',
      violation,
      timedOut: true,
      killedAs: { status: 'EXTERNAL_KILL', reason: 'killed', setupErrorAtKill: null },
      exited: exitedWith(9),
    });
    expect(resultOf(all).status).toBe('INTERNAL_ERROR');
    expect(resultOf({ ...all, internal: null, killedAs: null }).status).toBe('SETUP_ERROR');
    expect(resultOf({ ...all, internal: null, setupError: null }).status).toBe('VIOLATION');
    expect(resultOf({ ...all, internal: null, setupError: null, violation: null }).status).toBe('TIMEOUT');
    const killed = resultOf({ ...all, internal: null, setupError: null, violation: null, timedOut: false });
    expect([killed.status, killed.reason, killed.signal]).toEqual(['EXTERNAL_KILL', 'killed', 'SIGKILL']);
  });

  it('after a kill, only a setup error recorded before the kill counts', () => {
    const later = facts({
      setupError: 'seccomp: killed meanwhile',
      killedAs: { status: 'OUTPUT_LIMIT', reason: 'stdout passed maxBuffer', setupErrorAtKill: null },
      exited: exitedWith(15),
    });
    expect(resultOf(later).status).toBe('OUTPUT_LIMIT');
    const before = { ...later, killedAs: { ...later.killedAs!, setupErrorAtKill: 'mount: x' } };
    expect(resultOf(before)).toMatchObject({ status: 'SETUP_ERROR', reason: 'mount: x' });
  });

  it('a violation names the syscall, the address and the rule', () => {
    const net: Violation = {
      ...violation,
      kind: 'network',
      syscall: 'connect',
      address: '10.0.0.1:80',
      rule: 'deny 10.0.0.0/8',
    };
    const r = resultOf(facts({ violation: net, exited: exitedWith(9) }));
    expect(r.status).toBe('VIOLATION');
    expect(r.reason).toBe('network violation: connect to 10.0.0.1:80 (deny 10.0.0.0/8)');
    expect(r.violation?.args).toEqual(violation.args);
    expect(r.signal).toBe('SIGKILL');
  });

  it('SIGSYS without a monitor is a violation of an unknown syscall; with one, or after exec, a signal', () => {
    const sigsys = facts({ exited: exitedWith(31), monitored: false });
    expect(resultOf(sigsys)).toMatchObject({
      status: 'VIOLATION',
      violation: { nr: -1, syscall: 'unknown (SIGSYS, no monitor)' },
    });
    expect(resultOf({ ...sigsys, monitored: true })).toMatchObject({ status: 'SIGNALED', signal: 'SIGSYS' });
    expect(resultOf({ ...sigsys, beforeExec: false })).toMatchObject({ status: 'SIGNALED', signal: 'SIGSYS' });
  });

  it('the walltime and the OOM killer are named with their limits', () => {
    expect(resultOf(facts({ timedOut: true, exited: exitedWith(15, true), walltimeLimitS: 0.5 })).reason).toBe(
      'walltime limit of 0.5 s exceeded',
    );
    const oom = resultOf(facts({ oom: true, exited: exitedWith(9), memoryLimitBytes: 1048576n }));
    expect(oom.status).toBe('SIGNALED');
    expect(oom.reason).toBe("killed by the kernel's OOM killer: limits.memory (1048576 bytes) reached");
  });

  it('a stopped status (0x7f) is not a signal', () => {
    expect(resultOf(facts({ exited: exitedWith(0x7f) })).status).toBe('OK');
  });

  it('is pure: the same facts give equal Results', () => {
    const f = facts({ violation, exited: exitedWith(9) });
    expect(resultOf(f).toJSON()).toEqual(resultOf(f).toJSON());
  });
});
