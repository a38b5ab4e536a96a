// Executor.fromFd: the program comes from an open fd, not a path (Sandbox2's Executor(exec_fd)).
import { closeSync, copyFileSync, mkdtempSync, openSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Executor, ExecutorError, PolicyBuilder, Sandbox } from '@sbx/executor';
import { openFdCount, testcase } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'sbx-fromfd-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function policy() {
  return new PolicyBuilder()
    .allowDynamicStartup()
    .allowSystemMalloc()
    .allowWrite()
    .allowExit()
    .addLibrariesForBinary(testcase('preset_probe'))
    .build();
}

describe('Executor.fromFd', () => {
  it('runs a program whose file has no path any more', async () => {
    const copy = join(dir, 'probe');
    copyFileSync(testcase('preset_probe'), copy);
    const fd = openSync(copy, 'r');
    unlinkSync(copy); // nothing on any path now: only the fd reaches the program
    try {
      const ex = Executor.fromFd(fd, ['probe', 'none'], {
        stdio: ['ignore', 'pipe', 'ignore'],
        limits: { walltime: 20 },
      });
      const sb = new Sandbox(ex, policy());
      const out: Buffer[] = [];
      const done = sb.run();
      await sb.runAsync();
      const ended = new Promise((resolve) => sb.stdout!.on('data', (d: Buffer) => out.push(d)).on('end', resolve));
      const result = await done;
      await ended;
      expect(result.status).toBe('OK');
      expect(Buffer.concat(out).toString()).toBe('none: ok\n');
    } finally {
      closeSync(fd);
    }
  });

  it('refuses what is not an executable file, naming the fd', () => {
    const before = openFdCount();
    expect(() => Executor.fromFd(1 << 20, ['x'])).toThrow(ExecutorError);
    expect(() => Executor.fromFd(1 << 20, ['x'])).toThrow(/fd 1048576 is not open/);
    const d = openSync(dir, 'r');
    const plain = join(dir, 'data');
    writeFileSync(plain, 'not a program', { mode: 0o644 });
    const f = openSync(plain, 'r');
    try {
      expect(() => Executor.fromFd(d, ['x'])).toThrow(/is not a regular file/);
      expect(() => Executor.fromFd(f, ['x'])).toThrow(/is not executable/);
      expect(() => Executor.fromFd(-1, ['x'])).toThrow(TypeError);
      expect(() => Executor.fromFd(f, [])).toThrow(/argv must be a non-empty array/);
    } finally {
      closeSync(d);
      closeSync(f);
    }
    expect(openFdCount()).toBeLessThanOrEqual(before); // a leak only adds fds; an earlier test's sandbox may close one meanwhile
  });
});
