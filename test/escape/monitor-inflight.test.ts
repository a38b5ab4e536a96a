// Under network rules the monitor carries out every sendmsg for the sandboxee. The kernel charges
// fds in flight in unix sockets to the *sender's* user: the monitor's acting thread takes on the
// sandbox's own host uid (native/addon/capless.h), so they land on the sandbox's leased uid, never
// on the executor's (root) nor on another sandbox's. (The kernel compares that count with the
// sending thread's process limit, the executor's RLIMIT_NOFILE: docs/security.md, "Known limits".)
import { describe, expect, it } from 'vitest';
import { Executor, Sandbox } from '@sbx/executor';
import { runCaptured } from '../helpers.js';
import { asRoot, escapePolicy, executorStaysUnharmed, probePath } from './harness.js';

const rules = () => escapePolicy((b) => b.allowIPv4('127.0.0.1', 9));

describe.skipIf(!asRoot)('fds in flight sent through the monitor (network rules)', () => {
  executorStaysUnharmed();

  it("are charged to the sandbox, not to the executor's uid: the next sandbox under network rules is unaffected", async () => {
    // Baseline: the same probe without network rules stops at its own RLIMIT_NOFILE.
    const own = await runCaptured([probePath(), 'inflight-fill'], {
      policy: escapePolicy(),
      executor: { limits: { walltime: 2 } },
    });
    const ownN = Number(/^inflight-fill: (\d+) ETOOMANYREFS/.exec(own.stdout)?.[1]);
    expect(ownN).toBeGreaterThan(0);

    const ex = new Executor(probePath(), [probePath(), 'inflight-fill'], {
      stdio: ['ignore', 'pipe', 'ignore'],
      limits: { walltime: 30 },
    });
    const held = new Sandbox(ex, rules());
    const result = held.run();
    await held.runAsync();
    let out = '';
    held.stdout!.setEncoding('utf8');
    await new Promise<void>((resolve, reject) => {
      held.stdout!.on('data', (d: string) => {
        out += d;
        if (out.includes('held\n')) resolve();
      });
      held.stdout!.on('end', () => reject(new Error(out)));
    });
    try {
      // The probe's own cap (16000) or the executor's RLIMIT_NOFILE: the kernel's bound for a send
      // from a thread of the executor; charged to the held sandbox's uid alone.
      const heldN = Number(/^inflight-fill: (\d+)/.exec(out)?.[1]);
      expect(heldN).toBeGreaterThanOrEqual(ownN);
      const next = await runCaptured([probePath(), 'inflight-fill'], {
        policy: rules(),
        executor: { limits: { walltime: 2 } },
      });
      // On old main: "inflight-fill: 4250 ETOOMANYREFS" (what the first one left of the executor's uid's count).
      expect(next.stdout.split('\n')[0]).toBe(`inflight-fill: ${heldN} ${heldN === 16000 ? 'none' : 'ETOOMANYREFS'}`);
      // And a sandbox without network rules still reaches its own limit.
      const plain = await runCaptured([probePath(), 'inflight-fill'], {
        policy: escapePolicy(),
        executor: { limits: { walltime: 2 } },
      });
      expect(plain.stdout.split('\n')[0]).toBe(`inflight-fill: ${ownN} ETOOMANYREFS`);
    } finally {
      held.kill();
      await result;
    }
  }, 60_000);
});
