// The sandbox's pid 1 (sbx-init, native/forkserver/init.c) and /proc/1/*: the host's pid 1 is
// invisible (own pid namespace, own procfs), and the sandbox's own init must be out of reach.
// The init runs WITHOUT the seccomp filter (it is installed later, in pid 2) and is a fork of the
// forkserver: its memory and environ are the forkserver's, i.e. the executor's environment, and it
// holds the setup socket. If the sandboxee could ptrace-access it (same uid and dumpable, which is
// the case for an unprivileged executor unless init makes itself non-dumpable), it could read the
// executor's environment from /proc/1/environ, take fds with pidfd_getfd, and write code into
// init through /proc/1/mem that runs outside the filter: the "unfiltered sibling" escape class.
import { describe, expect, it } from 'vitest';
import { executorStaysUnharmed, lines, probe } from './harness.js';
import { sh } from '../helpers.js';

executorStaysUnharmed();

describe('the sandbox init (pid 1) is out of reach', () => {
  it('pid 1 is sbx-init, and it is not dumpable: owned by the (unmapped) host root', async () => {
    const { stdout } = await sh(
      'cat /proc/1/comm; stat -c %u /proc/1/environ; grep -E "^(Seccomp|NoNewPrivs|CapEff):" /proc/1/status',
    );
    const out = stdout.trim().split('\n');
    expect(out[0]).toBe('sbx-init');
    expect(out[1]).toBe('65534'); // non-dumpable: /proc/1/* belongs to global root, shown as the overflow uid
    expect(out).toContain('NoNewPrivs:\t1');
    expect(out).toContain('CapEff:\t0000000000000000');
  });

  it('/proc/1/mem, environ, maps, root, exe, fd, process_vm_readv and pidfd_getfd are all refused', async () => {
    const c = await probe(['init-access']);
    expect(c.result.status, c.result.toString()).toBe('OK');
    expect(lines(c)).toEqual([
      'open /proc/1/mem rw: errno EACCES',
      'read /proc/1/environ: errno EACCES',
      'read /proc/1/maps: errno EACCES',
      'readlink /proc/1/root: errno EACCES',
      'readlink /proc/1/exe: errno EACCES',
      'opendir /proc/1/fd: errno EACCES',
      'process_vm_readv 1: errno EPERM',
      'pidfd_open 1: ok', // a pidfd alone gives nothing: signals from inside do not reach pid 1
      'pidfd_getfd 1: errno EPERM',
    ]);
  });

  it('the executor environment does not leak through /proc/1/environ', async () => {
    // The forkserver (and so init) inherited this worker's environment, VITEST* included.
    const marker = Object.keys(process.env).find((k) => k.startsWith('VITEST'));
    expect(marker).toBeDefined();
    const { stdout } = await sh(
      'cat /proc/1/environ 2>/dev/null | tr "\\0" "\\n"; cat /proc/*/environ 2>/dev/null | tr "\\0" "\\n"; echo end',
    );
    expect(stdout).not.toContain(marker!);
    expect(stdout.trim().endsWith('end')).toBe(true);
  });

  it('code cannot be written into init through /proc/1/mem to run outside the filter', async () => {
    // Were it possible, init would run unshare(CLONE_NEWUSER) unfiltered and exit 43 or 44.
    const c = await probe(['init-inject']);
    expect(lines(c)).toEqual(['init-inject: errno EACCES']);
    expect(c.result.status).toBe('OK');
    expect(c.result.exitCode).toBe(0);
  });
});
