// What the monitor carries out for a sandboxee under network rules (issue #18 items 1 and 2): it
// acts from a thread with no capabilities and passes on only an allowlist. Each attack runs
// native/testcases/monitor_probe in a real sandbox whose network rules allow one host port, so the
// monitor takes every connect/sendto/sendmsg; what the host sees afterwards is checked from here.
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { native } from '@sbx/client/internal';
import { isolationPolicy, repoRoot, runCaptured, testcase } from '../helpers.js';
import { asRoot, executorStaysUnharmed, lines } from './harness.js';

executorStaysUnharmed();

const probe = () => testcase('monitor_probe');

/** Default allow, the usual view, and network rules that allow UDP/TCP to 127.0.0.1:port only. */
function rulesPolicy(port: number) {
  return isolationPolicy((b) => {
    b.addFile(probe());
    b.allowIPv4('127.0.0.1', port);
  });
}

function run(args: Array<string | number>, port: number) {
  return runCaptured([probe(), ...args.map(String)], {
    policy: rulesPolicy(port),
    executor: { limits: { walltime: 10 } },
  });
}

async function udpListener(host: string, port = 0): Promise<{ socket: UdpSocket; port: number; received: string[] }> {
  const received: string[] = [];
  const socket = createSocket('udp4');
  socket.on('message', (m) => received.push(m.toString()));
  socket.bind(port, host);
  await once(socket, 'listening');
  return { socket, port: socket.address().port, received };
}

const settle = () => new Promise((r) => setTimeout(r, 200));

let allowed: Awaited<ReturnType<typeof udpListener>>;
beforeAll(async () => {
  allowed = await udpListener('127.0.0.1');
});
afterAll(() => allowed.socket.close());

describe('netlink: the monitor never sends on a netlink socket for the sandboxee', () => {
  /** Whether a network interface of that name exists in this (the host's) network namespace;
   *  removed if it does, so a failing run leaves the host as it was. */
  function hostHasInterface(name: string): boolean {
    const there = existsSync(`/sys/class/net/${name}`);
    if (there) spawnSync('ip', ['link', 'del', name]);
    return there;
  }

  for (const how of ['addressed', 'plain'] as const) {
    it(`RTM_NEWLINK of an ifb interface in the host's namespace (IFLA_NET_NS_PID=1), ${how === 'addressed' ? 'sendto(sockaddr_nl)' : 'sendmsg without an address'}: refused, and no interface appears on the host`, async () => {
      const name = `sbxn${how[0]}${process.pid % 100000}`;
      hostHasInterface(name);
      const c = await run(['netlink-newlink', name, how], allowed.port);
      expect(c.result.status, c.result.toString() + c.stderr).toBe('OK');
      expect(lines(c)).toEqual(['netlink-newlink: send errno EPERM']);
      expect(hostHasInterface(name)).toBe(false);
    });
  }

  it('AUDIT_GET (CAP_AUDIT_CONTROL in the host user namespace) is refused', async () => {
    const c = await run(['netlink-audit'], allowed.port);
    expect(c.result.status, c.result.toString() + c.stderr).toBe('OK');
    // Refused by the monitor, or (no audit socket in a child network namespace) by the kernel
    // before any send: never an answer to AUDIT_GET.
    const out = lines(c);
    expect(out.length).toBe(1);
    expect(out[0]).toMatch(/^netlink-(audit: send errno EPERM|audit: errno EPROTONOSUPPORT)$/);
  });

  it("glibc's address lookup (getent ahostsv4 localhost) still works: its netlink query is refused and it falls back", async () => {
    const c = await runCaptured(['/usr/bin/getent', 'ahostsv4', 'localhost'], {
      policy: isolationPolicy((b) => {
        b.addFile('/etc/hosts');
        b.addFile('/etc/nsswitch.conf');
        b.allowIPv4('127.0.0.1', allowed.port);
      }),
    });
    expect(c.result.status, c.result.toString() + c.stderr).toBe('OK');
    expect(c.stdout).toMatch(/^127\.0\.0\.1\s+STREAM localhost/m);
  });
});

describe('a policy learned with --net', () => {
  it('sbx learn --net allow=127.0.0.1:53 -- getent ahostsv4 localhost resolves, and the learned policy runs it under sbx run', () => {
    const sbx = join(repoRoot, 'packages/executor/bin/sbx.js');
    const dir = mkdtempSync(join(tmpdir(), 'sbx-learn-net-'));
    try {
      const file = join(dir, 'getent.json');
      const learn = spawnSync(
        process.execPath,
        [sbx, 'learn', '-o', file, '--net', 'allow=127.0.0.1:53', '--', '/usr/bin/getent', 'ahostsv4', 'localhost'],
        { encoding: 'utf8', timeout: 60_000 },
      );
      expect(learn.status, learn.stderr).toBe(0);
      expect(learn.stderr).toMatch(/run 1\/1: OK, exit code 0/);
      const run = spawnSync(
        process.execPath,
        [sbx, 'run', '--policy', file, '--net', 'allow=127.0.0.1:53', '--', '/usr/bin/getent', 'ahostsv4', 'localhost'],
        { encoding: 'utf8', timeout: 60_000 },
      );
      expect(run.status, run.stderr).toBe(0);
      expect(run.stdout).toMatch(/^127\.0\.0\.1\s+STREAM localhost/m);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('control messages: the monitor passes SCM_RIGHTS only', () => {
  it('control: a plain sendmsg to the allowed destination arrives', async () => {
    const before = allowed.received.length;
    const c = await run(['cmsg', '127.0.0.1', allowed.port, 'none'], allowed.port);
    expect(lines(c)).toEqual(['cmsg-none: sent 4']);
    await settle();
    expect(allowed.received.length).toBe(before + 1);
  });

  it('SO_MARK (CAP_NET_ADMIN) is refused with EPERM and nothing is sent', async () => {
    const before = allowed.received.length;
    const c = await run(['cmsg', '127.0.0.1', allowed.port, 'mark'], allowed.port);
    expect(c.result.status, c.result.toString()).toBe('OK');
    expect(lines(c)).toEqual(['cmsg-mark: errno EPERM']);
    await settle();
    expect(allowed.received.length).toBe(before);
  });

  it.skipIf(native().landlockAbi() < 6)(
    "landlock isolation (every socket is the host's): SO_MARK is refused the same way",
    async () => {
      const before = allowed.received.length;
      const c = await runCaptured([probe(), 'cmsg', '127.0.0.1', String(allowed.port), 'mark'], {
        policy: rulesPolicy(allowed.port),
        executor: { isolation: 'landlock', limits: { walltime: 10 } },
      });
      expect(c.result.status, c.result.toString()).toBe('OK');
      expect(lines(c)).toEqual(['cmsg-mark: errno EPERM']);
      await settle();
      expect(allowed.received.length).toBe(before);
    },
  );

  it('an IP_RETOPTS loose source route through a non-allowed first hop (127.0.0.9) is refused; nothing reaches that hop', async () => {
    const hop = await udpListener('127.0.0.9', allowed.port);
    try {
      const c = await run(['cmsg', '127.0.0.1', allowed.port, 'retopts', '127.0.0.9'], allowed.port);
      expect(c.result.status, c.result.toString()).toBe('OK');
      expect(lines(c)).toEqual(['cmsg-retopts: errno EPERM']);
      await settle();
      expect(hop.received).toEqual([]);
    } finally {
      hop.socket.close();
    }
  });
});

describe('socket options on a socket of the host the monitor put in place', () => {
  it('an IP_OPTIONS loose source route set on it is refused; a plain send() reaches only the allowed peer, nothing the non-allowed first hop', async () => {
    const hop = await udpListener('127.0.0.9', allowed.port);
    try {
      const c = await run(['ipoptions', '127.0.0.1', allowed.port, '127.0.0.9'], allowed.port);
      expect(c.result.status, c.result.toString()).toBe('OK');
      expect(lines(c)).toEqual(['ipoptions: errno EPERM']);
      await settle();
      expect(hop.received).toEqual([]);
    } finally {
      hop.socket.close();
    }
  });
});

describe("socket ioctls on a socket of the host the monitor put in the sandbox's hands", () => {
  it.skipIf(!existsSync('/sys/class/net/eth0') && !asRoot)(
    'SIOCGIFCONF on it is refused: the host interfaces stay out of sight',
    async () => {
      const c = await run(['ifconf', '127.0.0.1', allowed.port], allowed.port);
      expect(c.result.status, c.result.toString()).toBe('OK');
      expect(lines(c)).toEqual(['connect: ok', 'ifconf: errno EPERM']);
    },
  );
});

describe("the monitor's own privileges", () => {
  /** comm -> { CapPrm, CapEff, CapInh } of this process's threads. */
  function threadCaps(): Map<string, { prm: bigint; eff: bigint; inh: bigint }> {
    const out = new Map<string, { prm: bigint; eff: bigint; inh: bigint }>();
    for (const tid of readdirSync('/proc/self/task')) {
      try {
        const comm = readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').trim();
        const st = readFileSync(`/proc/self/task/${tid}/status`, 'utf8');
        const cap = (k: string) => BigInt(`0x${new RegExp(`^${k}:\\s+([0-9a-f]+)$`, 'm').exec(st)![1]}`);
        out.set(comm, { prm: cap('CapPrm'), eff: cap('CapEff'), inh: cap('CapInh') });
      } catch {
        // a thread that ended meanwhile
      }
    }
    return out;
  }

  // The acting thread of each sandbox (no capabilities, the sandbox's uid): monitor-identity.test.ts.
  it('the monitor thread keeps only SYS_PTRACE, KILL, DAC_READ_SEARCH effective (SETUID, SETGID permitted only, for the acting threads it starts)', async () => {
    await run(['cmsg', '127.0.0.1', allowed.port, 'none'], allowed.port); // the monitor runs
    const caps = threadCaps();
    const keep = (1n << 19n) | (1n << 5n) | (1n << 2n); // CAP_SYS_PTRACE, CAP_KILL, CAP_DAC_READ_SEARCH
    const permittedOnly = (1n << 7n) | (1n << 6n); // CAP_SETUID, CAP_SETGID
    const monitor = caps.get('sbx-monitor')!;
    expect(monitor.prm & ~(keep | permittedOnly)).toBe(0n);
    expect(monitor.eff & ~keep).toBe(0n);
    expect(monitor.inh).toBe(0n);
    if (asRoot) {
      // Per thread: the executor's main thread keeps what it had.
      const main = readFileSync('/proc/self/status', 'utf8');
      expect(/^CapEff:\s+0*([0-9a-f]+)$/m.exec(main)![1]).not.toBe('0');
      expect(monitor.eff).toBe(keep);
    }
  });

  it('a port below 1024 is EACCES through the monitor, as for the sandboxee itself without network rules', async () => {
    const c = await run(['bind-low', 80], allowed.port);
    expect(lines(c)).toEqual(['bind-low: errno EACCES']);
    const own = await runCaptured([probe(), 'bind-low', '80'], { policy: isolationPolicy((b) => b.addFile(probe())) });
    expect(lines(own)).toEqual(['bind-low: errno EACCES']);
  });

  it('... also when the address says AF_UNSPEC (an IPv4 bind takes AF_UNSPEC 0.0.0.0 as AF_INET)', async () => {
    // Unprivileged executor: the capability-free thread's uid owns the sandbox's user namespace,
    // which gives it every capability there; the port check is the monitor's own.
    const c = await run(['bind-low', 80, 'unspec'], allowed.port);
    expect(lines(c)).toEqual(['bind-low: errno EACCES']);
    const own = await runCaptured([probe(), 'bind-low', '80', 'unspec'], {
      policy: isolationPolicy((b) => b.addFile(probe())),
    });
    expect(lines(own)).toEqual(['bind-low: errno EACCES']);
  });
});
