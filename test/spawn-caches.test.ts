// spawn-caches.test.ts: what the exec-mode spawn path keeps from one sandbox for the next (the
// layout ops of a filesystem layout, the compiled seccomp program of a policy) carries nothing of
// one sandbox into another: another layout or policy gets its own entry, a host change is seen,
// and what a request is handed is a copy.
import { chmodSync, mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { PolicyBuilder } from '@sbx/executor';
import { compilePolicy } from '@sbx/executor/bpf';
import { isolationPolicy, sh } from './helpers.js';

const base = mkdtempSync('/var/tmp/sbx-caches-');
chmodSync(base, 0o755); // the sandbox's user must reach it
afterAll(() => rmSync(base, { recursive: true, force: true }));

function dirWith(name: string, content: string): string {
  const d = join(base, name);
  mkdirSync(d);
  writeFileSync(join(d, 'file'), content);
  return d;
}

describe('layout cache, with real sandboxes', () => {
  it("a sandbox of another layout sees its own binds, not the previous sandbox's", async () => {
    const a = dirWith('a', 'from a\n');
    const b = dirWith('b', 'from b\n');
    const inA = { policy: isolationPolicy((p) => p.addDirectory(a)) };
    const inB = { policy: isolationPolicy((p) => p.addDirectory(b)) };
    for (let i = 0; i < 2; i++) {
      // twice: the second round comes from the cache
      expect((await sh(`cat ${a}/file`, inA)).stdout).toBe('from a\n');
      const seenFromB = await sh(`cat ${b}/file; ls ${a} 2>&1 || echo no-a`, inB);
      expect(seenFromB.stdout).toMatch(/^from b\n[\s\S]*no-a\n$/);
    }
  });

  it('a host symlink changed between two sandboxes of one layout is followed as it is now', async () => {
    const one = dirWith('one', 'one\n');
    dirWith('two', 'two\n');
    const link = join(base, 'current');
    symlinkSync('one', link);
    const opts = { policy: isolationPolicy((p) => p.addFile(join(link, 'file'))) };
    expect((await sh(`cat ${link}/file`, opts)).stdout).toBe('one\n');
    symlinkSync('two', `${link}.new`);
    renameSync(`${link}.new`, link); // the link now leads to two
    expect((await sh(`cat ${link}/file`, opts)).stdout).toBe('two\n');
    expect((await sh(`cat ${one}/file 2>&1 || echo none`, opts)).stdout).toMatch(/none\n$/);
  });
});

describe('compile cache', () => {
  const allowWrite = () => new PolicyBuilder().allowDynamicStartup().allowExit().allowWrite().build();
  const noWrite = () => new PolicyBuilder().allowDynamicStartup().allowExit().build();

  it('another policy gets its own program; the same policy the same one', () => {
    const w1 = compilePolicy(allowWrite());
    const n1 = compilePolicy(noWrite());
    const w2 = compilePolicy(allowWrite());
    expect(Buffer.from(n1.program).equals(Buffer.from(w1.program))).toBe(false);
    expect(w2.cached).toBe(true);
    expect(Buffer.from(w2.program).equals(Buffer.from(w1.program))).toBe(true);
  });

  it('a program handed out is a copy: writing into it changes no later compile', () => {
    const first = compilePolicy(allowWrite());
    const bytes = Buffer.from(first.program);
    first.program.fill(0);
    const again = compilePolicy(allowWrite());
    expect(again.cached).toBe(true);
    expect(Buffer.from(again.program).equals(bytes)).toBe(true);
    expect(Object.isFrozen(again.insns)).toBe(true);
  });

  it('a sandbox under the stricter policy is stopped after one under the looser one ran', async () => {
    const loose = isolationPolicy();
    const strict = isolationPolicy((p) =>
      p.blockSyscallWithErrno('mkdir', 'EPERM').blockSyscallWithErrno('mkdirat', 'EPERM'),
    );
    for (let i = 0; i < 2; i++) {
      expect((await sh('mkdir /tmp/x && echo made', { policy: loose })).stdout).toBe('made\n');
      expect((await sh('mkdir /tmp/x 2>/dev/null || echo refused', { policy: strict })).stdout).toBe('refused\n');
    }
  });
});
