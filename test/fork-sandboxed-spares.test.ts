// Sandboxed spares (startForkServer({ childPolicy })): children forked and sandboxed before any
// request, handed to requests whose policy is theirs. What must hold: a forbidden call in such a
// child is a VIOLATION and allowed work works; a request with another policy gets an ordinary fork;
// nothing of one spare reaches another request; a spare that dies while it waits is never handed
// out; and a forkserver whose children lie in the handshake never yields a "sandboxed" child.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  Executor,
  type ForkServerHandle,
  PolicyBuilder,
  Sandbox,
  startForkServer,
  type Policy,
  type Result,
} from '@sbx/executor';
import type { Comms } from '@sbx/client';
import { forkNodePolicy, repoRoot, tick } from './helpers.js';

const serverScript = join(repoRoot, 'test', 'fixtures', 'fork-server.mjs');
const liarScript = join(repoRoot, 'test', 'fixtures', 'fork-spare-liar.mjs');
const FLAGS = ['--single-threaded', '--v8-pool-size=1'];
const ENV = { PATH: '/usr/local/bin:/usr/bin:/bin' };

function start(
  policy: Policy,
  childPolicy: Policy | undefined,
  args: string[] = [],
  script = serverScript,
  sandboxedSpares?: number,
): Promise<ForkServerHandle> {
  return startForkServer(process.execPath, [process.execPath, ...FLAGS, script, ...args], {
    policy,
    cwd: repoRoot,
    env: ENV,
    forkTimeoutMs: 5000,
    ...(childPolicy ? { childPolicy } : {}),
    ...(sandboxedSpares !== undefined ? { sandboxedSpares } : {}),
  });
}

interface Run {
  sandbox: Sandbox;
  reply: Record<string, unknown> | null;
  result: Result;
}

async function request(server: ForkServerHandle, policy: Policy, job: Record<string, unknown>): Promise<Run> {
  const ex = new Executor(server, { limits: { walltime: 20 } });
  const comms: Comms = ex.ipc.comms;
  const sandbox = new Sandbox(ex, policy);
  await sandbox.runAsync();
  await comms.sendMessage(job);
  const reply = (await comms.recvMessage().catch(() => null)) as Record<string, unknown> | null;
  const result = await sandbox.awaitResult();
  comms.close();
  return { sandbox, reply, result };
}

/** Host pids of the forkserver's children (spares and running children). */
function childrenOfForkserver(server: ForkServerHandle): number[] {
  const ppidOf = (pid: string): number => {
    try {
      return Number(/^PPid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]);
    } catch {
      return -1;
    }
  };
  const pids = readdirSync('/proc').filter((d) => /^\d+$/.test(d));
  const fs = pids.filter((d) => ppidOf(d) === server.pid);
  return pids.filter((d) => fs.includes(String(ppidOf(d)))).map(Number);
}

describe('custom-fork mode: sandboxed spares', () => {
  const policy = forkNodePolicy();
  let server: ForkServerHandle;
  beforeAll(async () => {
    server = await start(policy, policy);
    await server.waitForSandboxedSpares(2, 20_000);
  });
  afterAll(async () => {
    await server?.close();
  });

  it('a request with the child policy takes a sandboxed spare: it is filtered before its request, its own sandboxMeHere() is a no-op, allowed work works', async () => {
    expect(server.childPolicy).toBe(policy);
    const r = await request(server, policy, { kind: 'whoami' });
    expect(r.sandbox.sandboxedAhead).toBe(true);
    expect(r.reply).toMatchObject({ sandboxed: true, filterInstalled: true });
    expect(r.result.status).toBe('OK');
    await server.waitForSandboxedSpares(1);
    const w = await request(server, policy, { kind: 'workload', light: true });
    expect(w.sandbox.sandboxedAhead).toBe(true);
    expect(w.result.status).toBe('OK');
    expect(w.reply).toMatchObject({ ok: true });
  });

  it('a forbidden syscall in a sandboxed spare is a VIOLATION naming it', async () => {
    await server.waitForSandboxedSpares(1);
    const r = await request(server, policy, { kind: 'violate' });
    expect(r.sandbox.sandboxedAhead).toBe(true);
    expect(r.reply).toBeNull();
    expect(r.result.status).toBe('VIOLATION');
    expect(r.result.violation?.syscall).toBe('mkdir');
  });

  it('a request with another policy gets an ordinary fork, under its own policy', async () => {
    const other = forkNodePolicy((b) => b.allowSyscalls(['getpgid']));
    const r = await request(server, other, { kind: 'whoami' });
    expect(r.sandbox.sandboxedAhead).toBe(false);
    expect(r.reply).toMatchObject({ sandboxed: true });
    expect(r.result.status).toBe('OK');
    // an equal policy built again (another object, same program) is the spares' policy
    await server.waitForSandboxedSpares(1);
    const same = await request(server, forkNodePolicy(), { kind: 'whoami' });
    expect(same.sandbox.sandboxedAhead).toBe(true);
  });

  it("no state of one request reaches the next: each spare is another child with its own channel, and one's globals are not another's", async () => {
    const seen: Array<Record<string, unknown>> = [];
    for (let i = 0; i < 4; i++) {
      await server.waitForSandboxedSpares(1);
      const r = await request(server, policy, { kind: 'whoami' });
      expect(r.sandbox.sandboxedAhead).toBe(true);
      expect(r.result.status).toBe('OK');
      seen.push(r.reply!);
    }
    expect(new Set(seen.map((s) => s.commsInode)).size).toBe(4);
    expect(seen.every((s) => s.mark === null)).toBe(true); // the mark each set is not in the next
  });

  it('a spare killed while it waits is never handed out: the next request still gets a working child', async () => {
    await server.waitForSandboxedSpares(2);
    const before = childrenOfForkserver(server);
    expect(before.length).toBeGreaterThanOrEqual(2);
    for (const pid of before) process.kill(pid, 'SIGKILL');
    await tick(50);
    const r = await request(server, policy, { kind: 'whoami' });
    expect(r.result.status).toBe('OK');
    expect(r.reply).toMatchObject({ sandboxed: true });
    expect(before).not.toContain(r.sandbox.pid);
  });
});

describe('custom-fork mode: sandboxed spares and a lying forkserver', () => {
  const policy = forkNodePolicy();

  for (const claimed of ['0', '1023']) {
    it(`children that claim fd ${claimed} as their listener (no filter installed) never become sandboxed spares; their requests end in SETUP_ERROR`, async () => {
      const server = await start(policy, policy, [claimed], liarScript);
      try {
        await expect(server.waitForSandboxedSpares(1, 1500)).rejects.toThrow(/0 of 1 ready/);
        expect(server.sandboxedSparesReady).toBe(0);
        const r = await request(server, policy, { kind: 'ping' });
        expect(r.sandbox.sandboxedAhead).toBe(false);
        expect(r.result.status).toBe('SETUP_ERROR');
        // the lie named: fd N is not a seccomp listener (or the lying child was already gone)
        expect(r.result.toString()).toMatch(/seccomp listener/);
      } finally {
        await server.close();
      }
    });
  }
});

describe('custom-fork mode: sandboxed spares, bad options', () => {
  it('a childPolicy that cannot receive the request under its filter, or a bad count, is refused before anything starts', async () => {
    const bare = new PolicyBuilder().allowExit().build();
    await expect(start(forkNodePolicy(), bare)).rejects.toThrow(/childPolicy must allow .*recvmsg/);
    await expect(start(forkNodePolicy(), forkNodePolicy(), [], serverScript, 17)).rejects.toThrow(
      /sandboxedSpares must be/,
    );
    await expect(start(forkNodePolicy(), undefined, [], serverScript, 2)).rejects.toThrow(
      /sandboxedSpares needs childPolicy/,
    );
  });

  it('sandboxedSpares: 0 keeps none; requests fork as before', async () => {
    const policy = forkNodePolicy();
    const server = await start(policy, policy, [], serverScript, 0);
    try {
      expect(server.sandboxedSparesReady).toBe(0);
      const r = await request(server, policy, { kind: 'whoami' });
      expect(r.sandbox.sandboxedAhead).toBe(false);
      expect(r.reply).toMatchObject({ sandboxed: true });
    } finally {
      await server.close();
    }
  });
});
