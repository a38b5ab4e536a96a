// Kernel attack surface the filter closes, beyond what policy.test.ts already tries (ptrace, bpf,
// keyctl, add_key, perf_event_open, userfaultfd, open_by_handle_at, io_uring_setup, clone3,
// unshare/clone with CLONE_NEWUSER, seccomp NEW_LISTENER, int 0x80, x32): the remaining members
// of those families, flags hidden in high bits, and filters the sandboxee stacks on its own.
import { describe, expect, it } from 'vitest';
import { sh } from '../helpers.js';
import { executorStaysUnharmed, expectViolation, lines, probe } from './harness.js';

executorStaysUnharmed();

describe('the rest of the denied families', () => {
  it('request_key (keyrings are not namespaced) -> VIOLATION request_key', async () => {
    expectViolation(await probe(['request_key']), 'request_key', 'request_key');
  });

  it('io_uring_enter and io_uring_register return ENOSYS, like io_uring_setup', async () => {
    for (const name of ['io_uring_enter', 'io_uring_register']) {
      const c = await probe([name]);
      expect(c.result.status).toBe('OK');
      expect(lines(c)).toEqual([`${name}: errno ENOSYS`]);
    }
  });

  it('unshare(CLONE_NEWUSER) with high bits set in the flags is still a violation', async () => {
    const c = await probe(['unshare-user-high']);
    expectViolation(c, 'unshare', 'unshare-user-high');
    expect(c.result.violation?.args[0]).toBe((1n << 40n) | 0x10000000n);
  });

  it('no /dev/userfaultfd (userfaultfd without the syscall), no /dev/tty, no /dev/kmsg inside', async () => {
    const { stdout } = await sh(
      'for d in /dev/userfaultfd /dev/tty /dev/kmsg /dev/mem /dev/ptmx; do test -e $d && echo "present $d"; done; echo checked',
    );
    expect(stdout).toBe('checked\n');
  });
});

describe('filters the sandboxee adds itself', () => {
  it('an extra allow-all filter (no listener) is accepted and lifts nothing: ptrace is still a violation', async () => {
    const c = await probe(['seccomp-allow-then-ptrace']);
    expectViolation(c, 'ptrace', 'ptrace');
    expect(lines(c)).toEqual(['seccomp allow-all: ok', 'ptrace: calling']);
  });

  it('an extra filter can only restrict: its errno rule applies on top of the policy', async () => {
    const c = await probe(['seccomp-errno']);
    expect(c.result.status).toBe('OK');
    expect(lines(c)).toEqual(['seccomp getppid-errno: ok', 'getppid: errno EPERM']);
  });
});
