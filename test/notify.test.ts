// Notify hooks (PolicyBuilder.notifySyscall + new Sandbox(executor, policy, notify)): hooked
// syscalls of a real sandboxee get allow / errno / kill as the handler answers; argument
// conditions route only matching calls; a handler that throws, answers nonsense or is too slow
// ends the sandbox with a Result that says so; started / signal / finished events.
import { describe, expect, it } from 'vitest';
import { native } from '@sbx/client/internal';
import {
  Executor,
  PolicyBuilder,
  Sandbox,
  loadPolicyFile,
  type ExecutorOptions,
  type HookedSyscall,
  type Result,
  type SandboxNotify,
  type SyscallAnswer,
} from '@sbx/executor';
import { isolationPolicy, openFdCount, testcase, tick } from './helpers.js';

const GETPID = 39; // x86_64
const EACCES = 13;
const EPERM = 1;

interface Run {
  result: Result;
  stdout: string;
  stderr: string;
  calls: HookedSyscall[];
}

/** Runs hook_probe `args` under a policy that hooks getpid (all calls, or those matching `when`). */
async function runProbe(
  args: string[],
  notify: SandboxNotify | undefined,
  opts: {
    when?: Parameters<PolicyBuilder['notifySyscall']>[1];
    policy?: ReturnType<typeof isolationPolicy>;
    executor?: ExecutorOptions;
  } = {},
): Promise<Run> {
  const calls: HookedSyscall[] = [];
  const policy = opts.policy ?? isolationPolicy((b) => b.notifySyscall('getpid', opts.when));
  const wrapped: SandboxNotify | undefined = notify && {
    ...notify,
    ...(notify.onSyscall
      ? {
          onSyscall: (c: HookedSyscall) => {
            calls.push(c);
            return notify.onSyscall!(c);
          },
        }
      : {}),
  };
  const probe = testcase('hook_probe');
  const executor = new Executor(probe, [probe, ...args], { ...opts.executor, stdio: ['ignore', 'pipe', 'pipe'] });
  const sandbox = wrapped ? new Sandbox(executor, policy, wrapped) : new Sandbox(executor, policy);
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  const ended = Promise.all(
    [sandbox.stdout!, sandbox.stderr!].map(
      (stream, i) =>
        new Promise<void>((resolve) => {
          stream.on('data', (d: Buffer) => (i === 0 ? out : err).push(d));
          stream.on('end', resolve);
          stream.on('error', () => resolve());
        }),
    ),
  );
  const result = await sandbox.run();
  await ended;
  return { result, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString(), calls };
}

const answer = (a: SyscallAnswer) => ({ onSyscall: () => a });

describe('notify hooks: the handler decides a hooked syscall', () => {
  it("'allow' lets the kernel run the call; the handler sees the registers", async () => {
    const r = await runProbe(['call', '7', '8'], answer('allow'));
    expect(r.result.status).toBe('OK');
    expect(r.stdout).toBe('getpid(7): ok\ngetpid(8): ok\ndone\n');
    expect(r.calls.map((c) => c.args[0])).toEqual([7n, 8n]);
    for (const c of r.calls) {
      expect(c).toMatchObject({ syscall: 'getpid', nr: GETPID, arch: 'x86_64' });
      expect(c.args).toHaveLength(6);
      expect(c.pid).toBeGreaterThan(0);
      expect(c.ip).toBeGreaterThan(0n);
    }
  });

  it('{ errno } fails the call with that errno, by number or by name, without running it', async () => {
    const byName = await runProbe(['call', '7'], answer({ errno: 'EACCES' }));
    expect(byName.result.status).toBe('OK');
    expect(byName.stdout).toBe(`getpid(7): errno ${EACCES}\ndone\n`);
    const byNumber = await runProbe(['call', '7'], answer({ errno: EPERM }));
    expect(byNumber.stdout).toBe(`getpid(7): errno ${EPERM}\ndone\n`);
  });

  it("'kill' ends the sandbox with a hook violation; the call never returns", async () => {
    const r = await runProbe(['call', '7', '8'], answer('kill'));
    expect(r.result.status).toBe('VIOLATION');
    expect(r.result.violation).toMatchObject({ kind: 'hook', syscall: 'getpid', nr: GETPID });
    expect(r.result.violation!.args[0]).toBe(7n);
    expect(r.result.reason).toContain("hook violation: getpid (the notify handler answered 'kill')");
    expect(r.stdout).toBe('');
    expect(r.calls).toHaveLength(1);
  });

  it('an async handler answers later; the call waits for it', async () => {
    const r = await runProbe(['call', '1', '2', '3'], {
      onSyscall: async (c) => {
        await new Promise((res) => setTimeout(res, 20));
        return c.args[0] === 2n ? { errno: 'EPERM' } : 'allow';
      },
    });
    expect(r.result.status).toBe('OK');
    expect(r.stdout).toBe(`getpid(1): ok\ngetpid(2): errno ${EPERM}\ngetpid(3): ok\ndone\n`);
  });

  it('calls of many threads wait at once and are answered each', async () => {
    const waiting: Array<() => void> = [];
    const r = await runProbe(['threads', '8', '5'], {
      onSyscall: () =>
        new Promise<SyscallAnswer>((resolve) => {
          waiting.push(() => resolve('allow'));
          // Every thread's call is parked in the kernel at the same time before any is answered.
          if (waiting.length === 8) for (const w of waiting) w();
        }),
    });
    expect(r.result.status).toBe('OK');
    expect(r.stdout).toBe('threads: 8 ok\ndone\n');
    expect(new Set(r.calls.map((c) => c.pid)).size).toBe(8);
  });
});

describe.skipIf(native().landlockAbi() < 6)("notify hooks under isolation: 'landlock'", () => {
  it('allow, errno and kill work the same (the subreaper init ends the tree on kill)', async () => {
    const executor = { isolation: 'landlock' as const };
    const r = await runProbe(
      ['call', '1', '2'],
      {
        onSyscall: (c) => (c.args[0] === 1n ? 'allow' : { errno: 'EPERM' }),
      },
      { executor },
    );
    expect(r.result.status).toBe('OK');
    expect(r.stdout).toBe(`getpid(1): ok\ngetpid(2): errno ${EPERM}\ndone\n`);
    const k = await runProbe(['call', '1'], answer('kill'), { executor });
    expect(k.result.status).toBe('VIOLATION');
    expect(k.result.violation).toMatchObject({ kind: 'hook', syscall: 'getpid' });
  });
});

describe('notify hooks: argument conditions', () => {
  it('route only the matching calls to the handler; the others take the later rules', async () => {
    const r = await runProbe(['call', '7', '8', '9', '7'], answer({ errno: 'EPERM' }), {
      when: [{ arg0: [7] }, { arg0: ['0x9'] }],
    });
    expect(r.result.status).toBe('OK');
    expect(r.stdout).toBe(
      `getpid(7): errno ${EPERM}\ngetpid(8): ok\ngetpid(9): errno ${EPERM}\ngetpid(7): errno ${EPERM}\ndone\n`,
    );
    expect(r.calls.map((c) => c.args[0])).toEqual([7n, 9n, 7n]);
  });

  it('a non-matching call falls through to the default action (kill here: a violation)', async () => {
    const b = new PolicyBuilder()
      .notifySyscall('getpid', [{ arg0: [7] }])
      .allowDynamicStartup()
      .allowExit()
      .allowWrite();
    for (const d of ['/usr', '/lib', '/lib64']) b.addDirectory(d);
    const r = await runProbe(['call', '7', '8'], answer('allow'), { policy: b.build() });
    expect(r.result.reason).toMatch(/^syscall violation: getpid/);
    expect(r.stdout).toBe('getpid(7): ok\n');
    expect(r.result.status).toBe('VIOLATION');
    expect(r.result.violation).toMatchObject({ kind: 'syscall', syscall: 'getpid' });
    expect(r.result.violation!.args[0]).toBe(8n);
  });

  it('a policy file\'s "notify" hooks the same way', async () => {
    const builder = loadPolicyFile({ notify: { getpid: [{ arg0: ['8'] }] }, default: 'allow' });
    for (const d of ['/usr', '/lib', '/lib64']) builder.addDirectory(d);
    const r = await runProbe(['call', '7', '8'], answer({ errno: 'EACCES' }), { policy: builder.build() });
    expect(r.stdout).toBe(`getpid(7): ok\ngetpid(8): errno ${EACCES}\ndone\n`);
    expect(r.calls.map((c) => c.args[0])).toEqual([8n]);
  });
});

describe('notify hooks: a handler that fails never hangs the sandbox', () => {
  it('a throw ends it with INTERNAL_ERROR naming the error', async () => {
    await tick(50); // the previous run's pipes close asynchronously
    const fdsBefore = openFdCount();
    const r = await runProbe(['call', '7', '8'], {
      onSyscall: () => {
        throw new Error('handler bug');
      },
    });
    expect(r.result.status).toBe('INTERNAL_ERROR');
    expect(r.result.reason).toBe('notify.onSyscall threw on getpid: Error: handler bug');
    expect(r.stdout).toBe('');
    await tick(50);
    expect(openFdCount()).toBeLessThanOrEqual(fdsBefore);
  });

  it('a rejected promise counts as a throw', async () => {
    const r = await runProbe(['call', '7'], { onSyscall: () => Promise.reject(new TypeError('no')) });
    expect(r.result.status).toBe('INTERNAL_ERROR');
    expect(r.result.reason).toBe('notify.onSyscall threw on getpid: TypeError: no');
  });

  it.each([
    ['maybe', `"maybe" (expected 'allow', 'kill' or { errno: 1..4095 | 'EPERM' ... })`],
    [undefined, `undefined (expected`],
    [{ errno: 0 }, 'an invalid errno 0'],
    [{ errno: 'ENOTANERRNO' }, 'an invalid errno "ENOTANERRNO"'],
    [{ errno: 4096 }, 'an invalid errno 4096'],
  ])('an answer of %j ends it with INTERNAL_ERROR naming the answer', async (bad, shown) => {
    const r = await runProbe(['call', '7'], { onSyscall: () => bad as unknown as SyscallAnswer });
    expect(r.result.status).toBe('INTERNAL_ERROR');
    expect(r.result.reason).toContain(`notify.onSyscall answered getpid with ${shown}`);
    expect(r.stdout).toBe('');
  });

  it('no answer within syscallTimeoutMs: the monitor ends it, INTERNAL_ERROR names the timeout', async () => {
    const r = await runProbe(['call', '7'], {
      syscallTimeoutMs: 100,
      onSyscall: () => new Promise<SyscallAnswer>(() => {}),
    });
    expect(r.result.status).toBe('INTERNAL_ERROR');
    expect(r.result.reason).toBe('notify.onSyscall did not answer getpid within 100 ms (syscallTimeoutMs)');
    expect(r.stdout).toBe('');
  });

  it('the deadline holds while the event loop is blocked; the late answer is dropped', async () => {
    const r = await runProbe(['call', '7', '8'], {
      syscallTimeoutMs: 50,
      onSyscall: () => {
        const until = Date.now() + 400; // blocks this thread: only the monitor thread can act
        while (Date.now() < until) {}
        return 'allow';
      },
    });
    expect(r.result.status).toBe('INTERNAL_ERROR');
    expect(r.result.reason).toContain('did not answer getpid within 50 ms');
    expect(r.stdout).toBe('');
    expect(r.calls).toHaveLength(1);
  });

  it('kill() while a handler decides ends the run; the answer that comes after is dropped', async () => {
    const probe = testcase('hook_probe');
    const executor = new Executor(probe, [probe, 'call', '7'], { stdio: ['ignore', 'pipe', 'ignore'] });
    let release!: () => void;
    const sandbox = new Sandbox(
      executor,
      isolationPolicy((b) => b.notifySyscall('getpid')),
      {
        onSyscall: () =>
          new Promise<SyscallAnswer>((resolve) => {
            release = () => resolve('allow');
            sandbox.kill();
          }),
      },
    );
    const result = await sandbox.run();
    release();
    expect(result.status).toBe('EXTERNAL_KILL');
  });
});

describe('notify hooks: misuse is named', () => {
  it('a hooked policy without onSyscall is a SETUP_ERROR', async () => {
    const r = await runProbe(['call', '7'], undefined);
    expect(r.result.status).toBe('SETUP_ERROR');
    expect(r.result.reason).toContain(
      'the policy sends getpid to a notify handler (notifySyscall), but the Sandbox has none',
    );
  });

  it("monitor: 'kill' cannot run hooks", async () => {
    const probe = testcase('hook_probe');
    const executor = new Executor(probe, [probe, 'call', '7'], { monitor: 'kill' });
    const result = await new Sandbox(
      executor,
      isolationPolicy((b) => b.notifySyscall('getpid')),
      answer('allow'),
    ).run();
    expect(result.status).toBe('SETUP_ERROR');
    expect(result.reason).toContain('notify hooks need the seccomp monitor');
  });

  it('the builder refuses network calls, hooks behind an allow rule and bad conditions', () => {
    const b = new PolicyBuilder()
      .notifySyscall('connect')
      .allowSyscall('getpid')
      .notifySyscall('getpid')
      .notifySyscall('getppid', [])
      .notifySyscall('kill', [{ arg9: [1] } as never])
      .notifySyscall('gettid', [{ arg0: ['x'] }])
      .notifySyscall('nosuchcall');
    expect(b.problems).toEqual([
      'notifySyscall("connect"): connect cannot be hooked: network calls are decided by the network rules (allowIPv4, allowUnixSocket, ...)',
      'notifySyscall("getpid"): an earlier rule already allows or blocks getpid, so the hook would never run: call notifySyscall before it',
      'notifySyscall("getppid"): needs at least one alternative',
      'notifySyscall("kill")[0]: unknown key "arg9" (arguments are arg0..arg5)',
      'notifySyscall("gettid")[0].arg0: "x" is not a 32-bit value (a number, "0x..." or decimal)',
      'notifySyscall("nosuchcall"): unknown syscall "nosuchcall" on x86_64 (did you mean tuxcall?)',
    ]);
  });

  it('the notify argument is checked', () => {
    const e = new Executor('/bin/true', ['/bin/true']);
    const p = isolationPolicy();
    expect(() => new Sandbox(e, p, null as never)).toThrow(/notify\) must be an object/);
    expect(() => new Sandbox(e, p, { onSyscal: () => 'allow' } as never)).toThrow(/unknown member "onSyscal"/);
    expect(() => new Sandbox(e, p, { onSyscall: 'allow' } as never)).toThrow(/onSyscall must be a function/);
    expect(() => new Sandbox(e, p, { syscallTimeoutMs: 0 })).toThrow(/syscallTimeoutMs must be an integer from 1/);
  });
});

describe('notify events', () => {
  it('onStarted comes before the first hooked call, onFinished with the Result', async () => {
    const seen: string[] = [];
    let finished: Result | undefined;
    const r = await runProbe(['call', '7'], {
      onStarted: (e) => seen.push(`started ${e.pid > 0}`),
      onSyscall: (c) => {
        seen.push(`syscall ${c.syscall}`);
        return 'allow';
      },
      onSignal: (e) => seen.push(`signal ${String(e.signal)}`),
      onFinished: (res) => {
        seen.push('finished');
        finished = res;
      },
    });
    expect(seen).toEqual(['started true', 'syscall getpid', 'finished']);
    expect(finished).toBe(r.result);
  });

  it('onSignal reports the signal that ended the target, before onFinished', async () => {
    const seen: string[] = [];
    const executor = new Executor('/bin/sh', ['/bin/sh', '-c', 'kill -SEGV $$']);
    const result = await new Sandbox(executor, isolationPolicy(), {
      onSignal: (e) => seen.push(`signal ${String(e.signal)}`),
      onFinished: (res) => seen.push(`finished ${res.status}`),
    }).run();
    expect(result.status).toBe('SIGNALED');
    expect(seen).toEqual(['signal SIGSEGV', 'finished SIGNALED']);
  });

  it('a throwing onStarted ends the sandbox with INTERNAL_ERROR', async () => {
    const r = await runProbe(['sleep', '5000'], {
      onStarted: () => {
        throw new Error('no start');
      },
      onSyscall: () => 'allow',
    });
    expect(r.result.status).toBe('INTERNAL_ERROR');
    expect(r.result.reason).toBe('notify.onStarted threw: Error: no start');
  });
});
