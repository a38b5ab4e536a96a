// Named fds (Sandbox2's MapFd(local, name) / GetMappedFD): the executor maps fds under names, a C
// (libsbx_client) or Node (@sbx/client) sandboxee looks them up by name and uses them.
import { closeSync, mkdtempSync, openSync, readSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Executor, ExecutorError } from '@sbx/executor';
import { isolationPolicy, repoRoot, runCaptured, testcase } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'sbx-named-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function greetingFd(text: string): number {
  const f = join(dir, `greeting-${Math.random().toString(36).slice(2)}`);
  writeFileSync(f, text);
  return openSync(f, 'r');
}

/** Reads what the sandboxee wrote to our end of a receiveFd socketpair (it has exited by now). */
function drain(fd: number): string {
  const buf = Buffer.alloc(256);
  const n = readSync(fd, buf);
  return buf.subarray(0, n).toString();
}

describe('named fds', () => {
  it('a C sandboxee finds its fds by name; an unknown name is ENOENT', async () => {
    const g = greetingFd('hi C');
    let reply = -1;
    try {
      const { result, stdout } = await runCaptured([testcase('named_fds_peer'), 'greeting', 'reply', 'nope'], {
        before: (_s, e) => {
          e.ipc.mapFd(g, 'greeting');
          reply = e.ipc.receiveFd('reply');
        },
      });
      expect(result.status, stdout).toBe('OK');
      expect(stdout).toBe(
        ['greeting: fd 1019 has=1', 'greeting says: hi C', 'reply: fd 1018 has=1', 'nope: ENOENT has=0', ''].join('\n'),
      );
      expect(drain(reply)).toBe('hello from C\n');
    } finally {
      closeSync(g);
      if (reply >= 0) closeSync(reply);
    }
  });

  it('a Node sandboxee finds its fds by name (getMappedFd, Client.getMappedFd); an unknown name is NOT_MAPPED', async () => {
    const g = greetingFd('hi Node');
    let reply = -1;
    try {
      const { result, stdout, stderr } = await runCaptured(
        [process.execPath, join(repoRoot, 'test', 'fixtures', 'named-fds.mjs')],
        {
          policy: isolationPolicy((b) => {
            b.addDirectory(repoRoot);
            if (!process.execPath.startsWith('/usr/'))
              b.addFile(process.execPath).addLibrariesForBinary(process.execPath);
          }),
          executor: { limits: { walltime: 30 } },
          before: (_s, e) => {
            e.ipc.mapFd(g, 'greeting');
            reply = e.ipc.receiveFd('reply');
          },
        },
      );
      expect(result.status, stderr).toBe('OK');
      const out = JSON.parse(stdout);
      expect(out).toMatchObject({ greeting: 'hi Node', hasReply: true, hasNope: false });
      expect(out.nope).toMatch(/^NOT_MAPPED: getMappedFd: no fd is mapped under "nope" \(mapped: greeting, reply\)/);
      expect(drain(reply)).toBe('hello from Node\n');
    } finally {
      closeSync(g);
      if (reply >= 0) closeSync(reply);
    }
  });

  it('refuses bad names, a name twice, and numbers a name already took', () => {
    const e = new Executor('/bin/true', ['true']);
    e.ipc.mapFd(0, 'in');
    expect(() => e.ipc.mapFd(0, 'in')).toThrow(ExecutorError);
    expect(() => e.ipc.mapFd(0, 'in')).toThrow(/the name "in" is already mapped/);
    expect(() => e.ipc.mapFd(0, 'bad name')).toThrow(TypeError);
    expect(() => e.ipc.mapFd(0, 'x'.repeat(65))).toThrow(/1..64 characters/);
    expect(() => e.ipc.mapFd(0, 'a,b=3')).toThrow(TypeError);
    expect(() => e.ipc.mapFd(0, 1019)).toThrow(/sandboxee fd 1019 is already mapped/);
    e.ipc.mapFd(1, 1018); // a number first: the next name skips it
    e.ipc.mapFd(2, 'err');
    expect([...e.ipc.namedFds]).toEqual([
      ['in', 1019],
      ['err', 1017],
    ]);
  });
});
