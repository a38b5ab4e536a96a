// Per-user kernel counters: a sandbox fills one as far as the kernel lets it and holds it; the
// host (a process of the executor's own uid, or the uid that owns the sandbox's user namespace)
// and the next sandbox must not notice. Every fill lasts only until the test kills the sandbox.
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { Executor, Sandbox, type ExecutorOptions, type LimitsOptions } from '@sbx/executor';
import { runCaptured } from '../helpers.js';
import { asRoot, escapePolicy, executorStaysUnharmed, probePath } from './harness.js';

executorStaysUnharmed();

const policy = escapePolicy();

interface Held {
  sandbox: Sandbox;
  /** The probe's report line, e.g. "sigqueue-fill: 256 EAGAIN". */
  report: string;
  end(): Promise<void>;
}

/** Runs `escape_probe NAME` until it says "held" (the counter is full and stays so). */
async function holding(name: string, executor: ExecutorOptions = {}): Promise<Held> {
  const ex = new Executor(probePath(), [probePath(), name], {
    stdio: ['ignore', 'pipe', 'ignore'],
    ...executor,
    limits: { walltime: 30, ...(executor.limits as LimitsOptions | undefined) },
  });
  const sandbox = new Sandbox(ex, policy);
  const result = sandbox.run();
  await sandbox.runAsync();
  let out = '';
  sandbox.stdout!.setEncoding('utf8');
  await new Promise<void>((resolve, reject) => {
    sandbox.stdout!.on('data', (d: string) => {
      out += d;
      if (out.includes('held\n')) resolve();
    });
    sandbox.stdout!.on('end', () => reject(new Error(`${name} ended without holding: ${out}`)));
  });
  return {
    sandbox,
    report: out.split('\n')[0]!,
    end: async () => {
      sandbox.kill();
      const r = await result;
      expect(r.status, r.toString()).toBe('EXTERNAL_KILL');
    },
  };
}

/** The probe run directly on the host, as this process's uid (the executor's). */
function onHost(name: string): string {
  return spawnSync(probePath(), [name], { encoding: 'utf8', timeout: 10_000 }).stdout;
}

describe('per-user counters (issue 18 items 4, 5)', () => {
  it("queued signals: a sandbox stops at its own RLIMIT_SIGPENDING, and a host process of the executor's uid can still timer_create and sigqueue", async () => {
    const held = await holding('sigqueue-fill');
    try {
      const [, n, err] = /^sigqueue-fill: (\d+) (\w+)$/.exec(held.report)!;
      expect(err).toBe('EAGAIN');
      expect(onHost('sigqueue-one')).toBe('timer_create: ok\nsigqueue: ok\n');
      expect(Number(n)).toBeLessThanOrEqual(256); // the default limit, not the host's (~96k here)
    } finally {
      await held.end();
    }
  });

  it('a lower limits.rlimitSigpending holds', async () => {
    const held = await holding('sigqueue-fill', { limits: { rlimitSigpending: 10 } });
    await held.end();
    expect(held.report).toMatch(/^sigqueue-fill: (\d|10) EAGAIN$/);
  });

  it("inotify instances: a sandbox stops at its user namespace's max_inotify_instances, and a host process of the executor's uid can still inotify_init1", async () => {
    const held = await holding('inotify-fill');
    try {
      const [, n, err] = /^inotify-fill: (\d+) (\w+)$/.exec(held.report)!;
      expect(err).toBe('EMFILE');
      expect(onHost('inotify-one')).toBe('inotify_init1: ok\n');
      expect(Number(n)).toBeLessThanOrEqual(32);
    } finally {
      await held.end();
    }
  });

  it('limits.userNamespace overrides one /proc/sys/user limit and keeps the other defaults', async () => {
    const { result, stdout } = await runCaptured(
      [
        '/bin/sh',
        '-c',
        'cat /proc/sys/user/max_inotify_instances /proc/sys/user/max_user_namespaces /proc/sys/user/max_inotify_watches',
      ],
      {
        executor: { limits: { userNamespace: { max_inotify_instances: 5 } } },
      },
    );
    expect(result.status, result.toString()).toBe('OK');
    expect(stdout).toBe('5\n0\n8192\n');
  });

  it.skipIf(!asRoot)(
    'fds in flight: a sandbox holding more than RLIMIT_NOFILE fds in unix sockets does not stop the next sandbox (each has its own host uid)',
    async () => {
      const held = await holding('inflight-fill');
      try {
        expect(held.report).toMatch(/^inflight-fill: \d+ ETOOMANYREFS$/);
        for (let i = 0; i < 3; i++) {
          const { result } = await runCaptured(['/bin/true']);
          expect(result.status, result.toString()).toBe('OK');
        }
      } finally {
        await held.end();
      }
    },
  );

  it.skipIf(!asRoot)(
    'when sandboxes share a host uid and a counter runs out, the setup error names the counter',
    async () => {
      // An explicit sandboxUser (root), or an unprivileged executor (its own uid): one uid for all.
      const shared: ExecutorOptions = asRoot ? { sandboxUser: { uid: 54321, gid: 54321 } } : {};
      const held = await holding('inflight-fill', shared);
      try {
        expect(held.report).toMatch(/^inflight-fill: \d+ ETOOMANYREFS$/);
        const { result } = await runCaptured(['/bin/true'], { executor: shared });
        expect(result.status, result.toString()).toBe('SETUP_ERROR');
        expect(result.reason).toMatch(/Too many references/);
        expect(result.reason).toMatch(/fds in flight in unix sockets of host uid \d+ .*RLIMIT_NOFILE/);
      } finally {
        await held.end();
      }
    },
  );
});
