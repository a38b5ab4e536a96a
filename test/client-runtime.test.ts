// What Client.sandboxMeHere() starts before the filter (docs/architecture.md, "What
// sandboxMeHere() starts before the filter"): libuv creates its threadpool's threads on the first
// piece of work, and again in a forked child, with clone(), which a policy without threads
// forbids; glibc counts the CPUs by opening a file the first time many threads allocate. The
// client starts both before the filter, on purpose: these runs switch msgpackr's native extension
// off, so nothing of msgpackr-extract's prebuild lookup (which started the pool by accident on
// the npm builds of Node 22 and 24) runs. test/run-node-lines.mjs runs this file under 22 and 24.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Executor, type ForkServerHandle, PolicyBuilder, type Policy, Sandbox, startForkServer } from '@sbx/executor';
import { repoRoot, runCaptured, addNodeView } from './helpers.js';

const NO_EXTRACT = { PATH: '/usr/local/bin:/usr/bin:/bin', MSGPACKR_NATIVE_ACCELERATION_DISABLED: 'true' };

/** allowNodeRuntime without threads (no clone) and the files a Node program needs in view. */
function noThreadsPolicy(openFiles: boolean): Policy {
  const b = new PolicyBuilder().allowNodeRuntime({ openFiles });
  addNodeView(b);
  b.allowSyscalls(['getppid']);
  return b.build();
}

describe('sandboxMeHere() starts what Node would create lazily, before the filter', () => {
  it('exec mode: fs, zlib and crypto on the threadpool work after the call, with msgpackr-extract never loaded', async () => {
    const fixture = join(repoRoot, 'test', 'fixtures', 'me-here.mjs');
    const { result, stdout, stderr } = await runCaptured([process.execPath, fixture, 'lazy-runtime'], {
      policy: noThreadsPolicy(false),
      executor: { enableSandboxBeforeExec: false, cwd: repoRoot, env: NO_EXTRACT },
    });
    expect(result.status, `${result} ${stderr}`).toBe('OK');
    const line = JSON.parse(stdout.split('\n').find((l) => l.startsWith('{'))!);
    expect(line.err).toBeNull();
    expect(line.extract).toEqual([]);
    expect(line.checks).toEqual({
      readFile: '//',
      gzip: 4096,
      pbkdf2: 32,
      randomBytes: 16,
      keyPair: 'ed25519',
      parallel: 16,
    });
  });

  it('a policy without threads still stops a new thread after the call', async () => {
    const fixture = join(repoRoot, 'test', 'fixtures', 'me-here.mjs');
    const { result } = await runCaptured([process.execPath, fixture, 'worker'], {
      policy: noThreadsPolicy(false),
      executor: { enableSandboxBeforeExec: false, cwd: repoRoot, env: NO_EXTRACT },
    });
    expect(result.status).toBe('VIOLATION');
    expect(['clone', 'clone3', 'mmap', 'mprotect', 'eventfd2', 'epoll_create1', 'pipe2']).toContain(
      result.violation?.syscall,
    );
  });

  describe('custom-fork mode: a forked child starts its own threadpool (threads do not survive fork)', () => {
    const FLAGS = ['--single-threaded', '--v8-pool-size=1'];
    const script = join(repoRoot, 'test', 'fixtures', 'fork-server.mjs');
    const childPolicy = noThreadsPolicy(true);
    const serverPolicy = (() => {
      const b = new PolicyBuilder().allowNodeRuntime({ threads: true, openFiles: true });
      addNodeView(b);
      b.allowSyscalls(['getppid']);
      return b.build();
    })();
    let onRequest: ForkServerHandle;
    let spares: ForkServerHandle;

    beforeAll(async () => {
      const common = { policy: serverPolicy, cwd: repoRoot, env: NO_EXTRACT, forkTimeoutMs: 5000 };
      onRequest = await startForkServer(process.execPath, [process.execPath, ...FLAGS, script], common);
      spares = await startForkServer(process.execPath, [process.execPath, ...FLAGS, script], {
        ...common,
        childPolicy,
        sandboxedSpares: 1,
      });
    }, 30_000);
    afterAll(async () => {
      await onRequest?.close();
      await spares?.close();
    });

    async function ask(server: ForkServerHandle): Promise<{ reply: unknown; status: string }> {
      const ex = new Executor(server, { limits: { walltime: 20 } });
      const comms = ex.ipc.comms; // made before the Sandbox, which hands it to the child
      const sandbox = new Sandbox(ex, childPolicy);
      await sandbox.runAsync();
      await comms.sendMessage({ kind: 'lazy-runtime' });
      const reply = await comms.recvMessage().catch((e: Error) => e.message);
      const result = await sandbox.awaitResult();
      comms.close();
      return { reply, status: `${result}` };
    }

    it('a child forked on request: zlib and crypto on the threadpool after its sandboxMeHere()', async () => {
      for (let i = 0; i < 2; i++) {
        const { reply, status } = await ask(onRequest);
        expect(reply, status).toMatchObject({ gzip: 4096, pbkdf2: 32, keyPair: 'ed25519' });
        expect(status).toMatch(/^OK/);
      }
    });

    it('a sandboxed spare (sandboxed before its request): the same', async () => {
      for (let i = 0; i < 2; i++) {
        const { reply, status } = await ask(spares);
        expect(reply, status).toMatchObject({ gzip: 4096, pbkdf2: 32, keyPair: 'ed25519' });
        expect(status).toMatch(/^OK/);
      }
    });
  });
});
