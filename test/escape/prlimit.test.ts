// prlimit64 on any process but the caller is an always-on denial (issue #18 item 3): with it a
// sandboxee lowered the limits of its own init, of a forkserver, of the executor or of a host
// process of the same uid. The rule the filter can check in every mode is "pid argument 0": a
// sandboxee's own pid differs per process and per pid namespace, and glibc's setrlimit/getrlimit
// (so bash's and python's ulimit) always pass 0.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { native } from '@sbx/client/internal';
import { isolationPolicy, repoRoot, runCaptured, testcase } from '../helpers.js';
import { asRoot, executorStaysUnharmed, lines } from './harness.js';

executorStaysUnharmed();

const probe = () => testcase('monitor_probe');
const policy = () => isolationPolicy((b) => b.addFile(probe()));
const landlockAbi = native().landlockAbi();

function nofile(pid: number): string {
  return /^Max open files\s+(\S+\s+\S+)/m.exec(readFileSync(`/proc/${pid}/limits`, 'utf8'))![1]!;
}

describe('prlimit64', () => {
  it('pid 0 (the caller): allowed, the limit is set', async () => {
    const c = await runCaptured([probe(), 'prlimit', '0'], { policy: policy() });
    expect(c.result.status, c.result.toString()).toBe('OK');
    expect(lines(c)).toEqual(['prlimit: calling', 'prlimit: ok', 'getrlimit: 64']);
  });

  it("pid 1 (the sandbox's init) is a violation; the call never returns", async () => {
    const c = await runCaptured([probe(), 'prlimit', '1'], { policy: policy() });
    expect(c.result.status, c.result.toString()).toBe('VIOLATION');
    expect(c.result.violation?.syscall).toBe('prlimit64');
    expect(lines(c)).toEqual(['prlimit: calling']);
  });

  it.skipIf(landlockAbi < 6)(
    'landlock isolation: a host process of the same uid keeps its limits; the call is a violation',
    async () => {
      const victim = spawn('/bin/sleep', ['300'], { stdio: 'ignore', ...(asRoot ? { uid: 65534, gid: 65534 } : {}) });
      try {
        await new Promise((r) => setTimeout(r, 50));
        const before = nofile(victim.pid!);
        const c = await runCaptured([probe(), 'prlimit', String(victim.pid)], {
          policy: policy(),
          executor: { isolation: 'landlock' },
        });
        expect(c.result.status, c.result.toString()).toBe('VIOLATION');
        expect(c.result.violation?.syscall).toBe('prlimit64');
        expect(nofile(victim.pid!)).toBe(before);
        expect(before).not.toBe('64 64');
      } finally {
        victim.kill('SIGKILL');
      }
    },
  );

  it("the default sbx run policy: the shell's ulimit and python's resource.setrlimit still work (glibc passes pid 0)", () => {
    const sbx = `${repoRoot}/packages/executor/bin/sbx.js`;
    const sh = spawnSync(process.execPath, [sbx, 'run', '--', '/bin/sh', '-c', 'ulimit -n 64 && ulimit -n'], {
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(sh.status, sh.stderr).toBe(0);
    expect(sh.stdout).toBe('64\n');
    if (!existsSync('/usr/bin/python3')) return;
    const py = spawnSync(
      process.execPath,
      [
        sbx,
        'run',
        '--errno',
        'socket=EACCES',
        '--',
        '/usr/bin/python3',
        '-c',
        'import resource as r; r.setrlimit(r.RLIMIT_NOFILE, (64, 64)); print(r.getrlimit(r.RLIMIT_NOFILE)[0])',
      ],
      { encoding: 'utf8', timeout: 60_000 },
    );
    expect(py.status, py.stderr).toBe(0);
    expect(py.stdout).toBe('64\n');
  });
});
