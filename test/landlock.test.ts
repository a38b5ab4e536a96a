// landlock.test.ts: Landlock as a second wall under the mount tree (issue #12, part A).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { createServer, type Server } from 'node:net';
import { describe, expect, it } from 'vitest';
import { native } from '@sbx/client/internal';
import { Executor, Sandbox } from '@sbx/executor';
import { isolationPolicy, repoRoot, runCaptured, sh } from './helpers.js';

const abi = (() => {
  const v = native().landlockAbi();
  return Math.max(v, 0);
})();

describe.skipIf(abi < 1)('Landlock in namespaces mode', () => {
  it('is applied by default with the kernel ABI, and not with landlock: off', async () => {
    for (const [landlock, want] of [
      ['auto', abi],
      ['off', 0],
    ] as const) {
      const sandbox = new Sandbox(new Executor('/bin/true', ['/bin/true'], { landlock }), isolationPolicy());
      const result = await sandbox.run();
      expect(result.status, result.reason).toBe('OK');
      expect(sandbox.landlockAbi).toBe(want);
    }
  });

  it('rejects a bad landlock option', () => {
    expect(() => new Executor('/bin/true', ['/bin/true'], { landlock: 'on' as never })).toThrow(
      /landlock must be 'auto' or 'off'/,
    );
  });

  it('keeps the usual tree working: list, read, exec, write tmpfs, devices', async () => {
    const { result, stdout, stderr } = await sh(
      'ls / >/dev/null && head -c 4 /dev/urandom | wc -c && grep -c root /etc/passwd && echo hi > /tmp/x && cat /tmp/x && ls /proc/self/fd | wc -l',
    );
    expect(result.status, `${result.reason} ${stderr}`).toBe('OK');
    expect(result.exitCode, stderr).toBe(0);
    expect(stdout.trim().split('\n').slice(0, 3)).toEqual(['4', '1', 'hi']);
  });

  // The mount tree mounts procfs read-write: without Landlock the sandboxee may write its own
  // /proc/self/comm (and attr/*, oom_score_adj...). Its Landlock rule is read-only.
  it('refuses a write the mount tree allows: /proc/self/comm', async () => {
    const script = 'echo pwned > /proc/self/comm && read c < /proc/self/comm && echo $c';
    const off = await sh(script, { executor: { landlock: 'off' } });
    expect(off.stdout.trim()).toBe('pwned');
    const on = await sh(script);
    expect(on.stdout.trim()).toBe('');
    expect(on.stderr).toMatch(/Permission denied/);
    expect(on.result.exitCode).not.toBe(0);
  });

  // (Node binds abstract names with the whole sun_path, NUL-padded: the client pads too.)
  // With allowUnrestrictedNetworking the sandbox shares the host's network namespace, so a host
  // daemon's abstract unix socket is reachable through the mount tree and the netns alike; the
  // Landlock scope (ABI 6) refuses the connect with EPERM.
  it.skipIf(abi < 6 || !existsSync('/usr/bin/python3'))(
    'scopes abstract unix sockets to the sandbox (shared network)',
    async () => {
      const name = `sbx-landlock-test-${process.pid}-${Date.now()}`;
      const server: Server = createServer((c) => c.end('hello\n'));
      await new Promise<void>((r) => server.listen(`\0${name}`, r));
      try {
        const py = `import socket\ns=socket.socket(socket.AF_UNIX)\ntry:\n  s.connect(("\\0${name}").ljust(108, "\\0")); print("connected", s.recv(16).decode().strip())\nexcept OSError as e:\n  print("errno", e.errno)`;
        const policy = isolationPolicy((b) => b.allowUnrestrictedNetworking());
        const off = await runCaptured(['/usr/bin/python3', '-c', py], { policy, executor: { landlock: 'off' } });
        expect(off.stdout.trim(), off.stderr).toBe('connected hello');
        const on = await runCaptured(['/usr/bin/python3', '-c', py], {
          policy: isolationPolicy((b) => b.allowUnrestrictedNetworking()),
        });
        expect(on.stdout.trim(), on.stderr).toBe('errno 1');
      } finally {
        server.close();
      }
    },
  );

  it('allows a rw bind to be written and keeps a ro bind read-only', async () => {
    const { mkdtempSync, chmodSync, readFileSync, rmSync, writeFileSync } = await import('node:fs');
    const rw = mkdtempSync('/tmp/sbx-ll-rw-');
    const ro = mkdtempSync('/tmp/sbx-ll-ro-');
    chmodSync(rw, 0o777);
    writeFileSync(`${ro}/f`, 'ro\n');
    chmodSync(ro, 0o755);
    try {
      const policy = isolationPolicy((b) =>
        b.addDirectoryAt(rw, '/work', { writable: true }).addDirectoryAt(ro, '/data'),
      );
      const { result, stdout, stderr } = await sh(
        'echo out > /work/o && cat /data/f && (echo x > /data/g) 2>/dev/null || echo refused',
        { policy },
      );
      expect(result.status, `${result.reason} ${stderr}`).toBe('OK');
      expect(stdout.trim().split('\n')).toEqual(['ro', 'refused']);
      expect(readFileSync(`${rw}/o`, 'utf8')).toBe('out\n');
    } finally {
      rmSync(rw, { recursive: true, force: true });
      rmSync(ro, { recursive: true, force: true });
    }
  });

  it('sbx run --landlock auto|off', () => {
    const sbx = (args: string[]) =>
      spawnSync(process.execPath, [join(repoRoot, 'packages', 'executor', 'bin', 'sbx.js'), ...args], {
        encoding: 'utf8',
        timeout: 30_000,
      });
    const script = ['/bin/sh', '-c', 'echo x > /proc/self/comm && echo wrote'];
    expect(sbx(['run', '--landlock', 'off', '--', ...script]).stdout).toBe('wrote\n');
    const on = sbx(['run', '--', ...script]);
    expect(on.stdout).toBe('');
    expect(on.stderr).toMatch(/Permission denied/);
    const bad = sbx(['run', '--landlock', 'on', '--', '/bin/true']);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/--landlock must be auto or off/);
  });
});
