// Host IPC objects (attack pass after issue 18). Landlock isolation shares the host's IPC
// namespace: SysV segments and message queues a sandbox creates are the host's, bounded host-wide
// (kernel.shmmni 4096, msgmni 32000) and they outlive the sandbox. Before the fix, `sbx run
// --isolation landlock` (the CLI's default policy allows the ipc family) took all 4096 shm ids and
// all 32000 message queue ids of the host, and they stayed after the run: every host shmget/msgget
// then failed with ENOSPC. Namespaces mode has an IPC namespace of its own that dies with it.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { native } from '@sbx/client/internal';
import { sandboxIdRange, setSandboxIdRange } from '@sbx/executor';
import { repoRoot, runCaptured } from '../helpers.js';
import { asRoot, escapePolicy, probePath } from './harness.js';

const abi = (() => {
  try {
    return native().landlockAbi();
  } catch {
    return 0;
  }
})();

/** The ids in /proc/sysvipc/{shm,msg} (the host's IPC namespace: this process's). */
function hostIds(kind: 'shm' | 'msg'): string[] {
  return readFileSync(`/proc/sysvipc/${kind}`, 'utf8')
    .split('\n')
    .slice(1)
    .filter((l) => l.trim() !== '')
    .map((l) => l.trim().split(/\s+/)[1]!);
}
const hostObjects = (kind: 'shm' | 'msg') => hostIds(kind).length;

function runProbe(isolation: string, kind: 'shm' | 'msg', extra: string[] = []): string {
  const r = spawnSync(
    process.execPath,
    [
      join(repoRoot, 'packages', 'executor', 'bin', 'sbx.js'),
      'run',
      '--isolation',
      isolation,
      ...extra,
      '--',
      probePath(),
      'sysv-fill',
      kind,
      '5000',
    ],
    {
      encoding: 'utf8',
      timeout: 60_000,
    },
  );
  expect(r.status, r.stderr).toBe(0);
  return r.stdout.trim();
}

describe('host IPC objects', () => {
  for (const kind of ['shm', 'msg'] as const) {
    it.skipIf(abi < 6)(
      `sbx run --isolation landlock: creating a SysV ${kind} object of the host is EPERM, and the host's count is unchanged after the run`,
      () => {
        const before = hostObjects(kind);
        expect(runProbe('landlock', kind)).toBe(`sysv-fill ${kind}: 0 EPERM`);
        expect(hostObjects(kind)).toBe(before);
      },
    );
  }

  it.skipIf(abi < 6)(
    'sbx run --isolation landlock --allow shmget: the caller may opt in (and gets host objects)',
    () => {
      const before = new Set(hostIds('shm'));
      const r = spawnSync(
        process.execPath,
        [
          join(repoRoot, 'packages', 'executor', 'bin', 'sbx.js'),
          'run',
          '--isolation',
          'landlock',
          '--allow',
          'shmget',
          '--',
          probePath(),
          'sysv-fill',
          'shm',
          '2',
        ],
        { encoding: 'utf8', timeout: 60_000 },
      );
      const made = hostIds('shm').filter((id) => !before.has(id));
      for (const id of made) spawnSync('ipcrm', ['-m', id]); // what the probe made outlives it: remove it
      // A root executor removes a leased uid's objects when the lease ends; an unprivileged one
      // runs every sandbox as its own uid and cannot tell whose they are.
      expect(made.length).toBe(asRoot ? 0 : 2);
      expect(r.stdout.trim()).toBe('sysv-fill shm: 2 none');
    },
  );

  it('sbx run (namespaces): the sandbox creates SysV objects in its own IPC namespace, none is left on the host', () => {
    const before = hostObjects('shm');
    expect(runProbe('namespaces', 'shm')).toMatch(/^sysv-fill shm: \d+ (ENOSPC|none)$/);
    expect(hostObjects('shm')).toBe(before);
  });
});

describe.skipIf(abi < 6 || !asRoot)('landlock isolation: a leased uid is handed on without IPC objects', () => {
  it("a sandbox cannot see a previous sandbox's SysV objects (same leased uid)", async () => {
    const saved = sandboxIdRange();
    // One id: both sandboxes get the same uid, one after the other.
    const first = 1_990_000_000 + Math.floor(Math.random() * 1_000_000);
    setSandboxIdRange({ first, count: 1 });
    const key = 0x5b000000 + Math.floor(Math.random() * 0xffffff);
    const opts = {
      policy: escapePolicy(),
      executor: { isolation: 'landlock' as const, limits: { walltime: 10 } },
    };
    try {
      const made = await runCaptured([probePath(), 'ipc-make', String(key)], opts);
      // POSIX message queues: Landlock refuses creating one (a file of the host's mqueue filesystem).
      expect(made.stdout.trim(), made.stderr).toBe('ipc-make: shm ok msg ok sem ok mq EACCES');
      const found = await runCaptured([probePath(), 'ipc-find', String(key)], opts);
      // On old main: "ipc-find: shm ok msg ok sem ok ..." (left behind for the next holder).
      expect(found.stdout.trim()).toMatch(/^ipc-find: shm ENOENT msg ENOENT sem ENOENT mq E[A-Z]+$/);
      for (const kind of ['shm', 'msg', 'sem'] as const) expect(objectsOf(kind, first)).toEqual([]);
    } finally {
      setSandboxIdRange(saved ?? 'off');
      native().ipcRemoveOwnedBy(first); // whatever a failing run left
    }
  });
});

/** Ids of /proc/sysvipc/KIND whose owner or creator is uid. */
function objectsOf(kind: 'shm' | 'msg' | 'sem', uid: number): string[] {
  const [head, ...rows] = readFileSync(`/proc/sysvipc/${kind}`, 'utf8').split('\n');
  const cols = head!.trim().split(/\s+/);
  const at = (name: string) => cols.indexOf(name);
  return rows
    .map((r) => r.trim().split(/\s+/))
    .filter((c) => c.length > 1 && (c[at('uid')] === String(uid) || c[at('cuid')] === String(uid)))
    .map((c) => c[1]!);
}
