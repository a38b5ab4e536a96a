// Whatever the monitor carries out for a sandboxee under network rules runs as the sandbox's own
// host uid/gid, with no capabilities (issue #18, what remained): a peer sees the sandbox in
// SO_PEERCRED, a root-owned socket the sandboxee could not open stays closed, a directory it
// cannot search hides what is in it, and fds sent through the monitor are charged to its uid.
// Each attack runs native/testcases/monitor_probe in a real sandbox whose network rules allow the
// unix paths below.
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Executor, Sandbox } from '@sbx/executor';
import { native } from '@sbx/client/internal';
import { isolationPolicy, runCaptured, testcase } from '../helpers.js';
import { asRoot, executorStaysUnharmed, lines } from './harness.js';

executorStaysUnharmed();

const probe = () => testcase('monitor_probe');
const landlockAbi = () => {
  try {
    return native().landlockAbi();
  } catch {
    return 0;
  }
};

let dir: string;
const servers: ChildProcess[] = [];

/** A unix socket server outside any sandbox (this process's uid) at dir/name, chmod `mode`,
 *  answering each peer "uid=U gid=G" from SO_PEERCRED. */
async function peercredServer(name: string, mode: string, at = dir): Promise<string> {
  const path = join(at, name);
  const child = spawn(probe(), ['peercred-server', path, mode], { stdio: ['ignore', 'pipe', 'inherit'] });
  servers.push(child);
  await new Promise<void>((resolve, reject) => {
    child.stdout!.once('data', (d: Buffer) =>
      d.toString().startsWith('listening') ? resolve() : reject(new Error(d.toString())),
    );
    child.once('exit', (code) => reject(new Error(`peercred-server exited ${code}`)));
  });
  return path;
}

function policy(allow: string[]) {
  return isolationPolicy((b) => {
    b.addFile(probe());
    b.addDirectory(dir);
    // Network rules are on (the monitor takes every connect and sendmsg) even when no path is allowed.
    b.allowIPv4('127.0.0.1', 9);
    for (const p of allow) b.allowUnixSocket(p);
  });
}

async function run(args: string[], allow: string[]) {
  let sandbox: Sandbox | undefined;
  const c = await runCaptured([probe(), ...args], {
    policy: policy(allow),
    executor: { limits: { walltime: 10 } },
    before: (s) => {
      sandbox = s;
    },
  });
  return { ...c, hostUid: sandbox!.hostUid };
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'sbx-identity-'));
  chmodSync(dir, 0o755);
});
afterAll(() => {
  for (const s of servers) s.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

describe("the monitor acts as the sandbox's host uid", () => {
  it('a peer of a unix socket the monitor connected sees the sandbox in SO_PEERCRED, not the executor', async () => {
    const path = await peercredServer('open.sock', '777');
    const c = await run(['unix-peer', path], [path]);
    expect(c.result.status, c.result.toString()).toBe('OK');
    // On old main, as root: "unix-peer: uid=0 gid=0" (the executor's ids).
    expect(lines(c)).toEqual([`unix-peer: uid=${c.hostUid} gid=${c.hostUid}`]);
  });

  it.skipIf(!asRoot)(
    "an allowed path served by a root-owned socket (mode 0755) is EACCES, as for the sandboxee's own connect",
    async () => {
      const path = await peercredServer('root-only.sock', '755');
      const c = await run(['unix-peer', path], [path]);
      expect(c.result.status, c.result.toString()).toBe('OK');
      // On old main: "unix-peer: uid=0 gid=0" (the connect succeeded as uid 0).
      expect(lines(c)).toEqual(['unix-peer: errno EACCES']);
    },
  );

  it.skipIf(!asRoot)(
    'a directory the sandboxee cannot search hides what is in it: the same EACCES for a socket there and for nothing',
    async () => {
      const secret = join(dir, 'secret');
      mkdirSync(secret, { mode: 0o700 });
      const there = await peercredServer('s.sock', '777', secret);
      const absent = join(secret, 'absent.sock');
      // Not allowed: the monitor only looks the path up (a socket there would be a violation).
      const a = await run(['unix-peer', there], []);
      const b = await run(['unix-peer', absent], []);
      // On old main: a VIOLATION for the socket, "unix-peer: errno ENOENT" for nothing.
      expect(a.result.status, a.result.toString()).toBe('OK');
      expect(lines(a)).toEqual(['unix-peer: errno EACCES']);
      expect(b.result.status, b.result.toString()).toBe('OK');
      expect(lines(b)).toEqual(['unix-peer: errno EACCES']);
      // Allowed, the same: the monitor cannot reach it either.
      const allowed = await run(['unix-peer', there], [there]);
      expect(lines(allowed)).toEqual(['unix-peer: errno EACCES']);
    },
  );

  it("the acting thread runs as the sandbox's uid and gid with no capabilities while the sandbox lives, and is gone after", async () => {
    const path = await peercredServer('hold.sock', '777');
    const ex = new Executor(probe(), [probe(), 'unix-hold', path], {
      stdio: ['ignore', 'pipe', 'ignore'],
      limits: { walltime: 10 },
    });
    const sandbox = new Sandbox(ex, policy([path]));
    const result = sandbox.run();
    await sandbox.runAsync();
    let out = '';
    sandbox.stdout!.setEncoding('utf8');
    await new Promise<void>((resolve, reject) => {
      sandbox.stdout!.on('data', (d: string) => {
        out += d;
        if (out.includes('connected\n')) resolve();
      });
      sandbox.stdout!.on('end', () => reject(new Error(out)));
    });
    try {
      const acting = actingThreads();
      expect(acting).toContainEqual({
        uid: `${sandbox.hostUid}`,
        gid: `${sandbox.hostUid}`,
        prm: 0n,
        eff: 0n,
        inh: 0n,
      });
    } finally {
      sandbox.kill();
      await result;
    }
    await new Promise((r) => setTimeout(r, 100));
    expect(actingThreads().filter((t) => t.uid === `${sandbox.hostUid}`)).toEqual([]);
  });
});

describe.skipIf(!asRoot || landlockAbi() < 6)(
  "landlock isolation: the acting thread shares the sandbox's uid on the host",
  () => {
    it('the sandboxee cannot signal it, open its memory or renice it', async () => {
      const path = await peercredServer('scan.sock', '777');
      const c = await runCaptured([probe(), 'unix-scan', path], {
        policy: policy([path]),
        executor: { isolation: 'landlock', limits: { walltime: 10 } },
      });
      expect(c.result.status, c.result.toString()).toBe('OK');
      const found = lines(c).filter((l) => l.startsWith('unix-scan: thread '));
      expect(found.length, c.stdout).toBeGreaterThanOrEqual(1); // the acting thread, seen in /proc
      for (const l of found) expect(l).toMatch(/^unix-scan: thread signal EPERM mem E(ACCES|PERM) setpriority EPERM$/);
    });
  },
);

describe('fds passed through the monitor', () => {
  it('more than 253 fds in one message: EINVAL before any fd is taken (as the kernel, which checks the count first)', async () => {
    // The last fd number is not open: had the monitor pulled the fds first, it would say EBADF.
    const over = await run(['scm-many', '254'], []);
    // On old main: "scm-many: errno EBADF".
    expect(lines(over)).toEqual(['scm-many: errno EINVAL']);
    const own = await runCaptured([probe(), 'scm-many', '254'], {
      policy: isolationPolicy((b) => b.addFile(probe())),
    });
    expect(lines(own)).toEqual(['scm-many: errno EINVAL']);
    // At the limit the count passes and the bad fd is found.
    const at = await run(['scm-many', '253'], []);
    expect(lines(at)).toEqual(['scm-many: errno EBADF']);
  });
});

/** The executor's threads named sbx-capless: uid, gid (effective) and capability sets. */
function actingThreads() {
  const out: Array<{ uid: string; gid: string; prm: bigint; eff: bigint; inh: bigint }> = [];
  for (const tid of readdirSync('/proc/self/task')) {
    try {
      if (readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').trim() !== 'sbx-capless') continue;
      const st = readFileSync(`/proc/self/task/${tid}/status`, 'utf8');
      const cap = (k: string) => BigInt(`0x${new RegExp(`^${k}:\\s+([0-9a-f]+)$`, 'm').exec(st)![1]}`);
      const id = (k: string) => new RegExp(`^${k}:\\s+\\d+\\s+(\\d+)`, 'm').exec(st)![1]!;
      out.push({ uid: id('Uid'), gid: id('Gid'), prm: cap('CapPrm'), eff: cap('CapEff'), inh: cap('CapInh') });
    } catch {
      // a thread that ended meanwhile
    }
  }
  return out;
}
