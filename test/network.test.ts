// Network rules end to end (issue #8): real sandboxees whose connect(), sendto() and friends the
// monitor decides (native/addon/netproxy.cc). Every server runs in this process on the host's
// loopback; under rules the sandbox keeps its own namespace, so the host's 127.0.0.1 is reached
// only through sockets the monitor connects from the executor's namespace.
import { createServer, type Server, type Socket } from 'node:net';
import { createServer as createHttpServer } from 'node:http';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { once } from 'node:events';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PolicyBuilder, type Policy } from '@sbx/executor';
import { NET_SYSCALL_BITS, decideNetwork, encodeNetworkTable } from '@sbx/executor/bpf';
import { native } from '@sbx/client/internal';
import {
  isolationPolicy,
  openFdCount,
  repoRoot,
  runCaptured,
  testcase,
  tick,
  addNodeView,
  runNodeMeHere,
} from './helpers.js';

const asRoot = process.getuid?.() === 0;
const client = () => testcase('net_client');

/** What net_client needs, network client calls, and `extra` (the rules under test). */
function netPolicy(extra: (b: PolicyBuilder) => void): Policy {
  const b = new PolicyBuilder()
    .allowDynamicStartup()
    .allowSystemMalloc()
    .allowRead()
    .allowWrite()
    .allowExit()
    .allowTime()
    .allowSyscalls([
      'getrandom',
      'set_robust_list',
      'rseq',
      'close',
      'fcntl',
      'clone',
      'futex',
      'mprotect',
      'rt_sigprocmask',
      'pipe2',
      'socketpair',
      'bind',
      'listen',
    ])
    .allowNetworkClient()
    .addLibrariesForBinary(client());
  extra(b);
  return b.build();
}

function runClient(args: Array<string | number>, extra: (b: PolicyBuilder) => void, walltime = 20) {
  return runCaptured([client(), ...args.map(String)], { policy: netPolicy(extra), executor: { limits: { walltime } } });
}

/** A TCP server that answers each first chunk with `reply` and counts its connections. */
async function tcpServer(
  host: string,
  reply: string,
  onConnect?: (s: Socket) => void,
  port = 0,
): Promise<{ server: Server; port: number; connections: () => number }> {
  let count = 0;
  const server = createServer((s) => {
    count++;
    s.on('error', () => {});
    if (onConnect) onConnect(s);
    else s.once('data', () => s.end(reply));
  });
  server.listen(port, host);
  await once(server, 'listening');
  return { server, port: (server.address() as { port: number }).port, connections: () => count };
}

/** A UDP server that answers every datagram with "pong:<datagram>". */
async function udpServer(
  host = '127.0.0.1',
  port = 0,
): Promise<{ socket: UdpSocket; port: number; received: () => number }> {
  let count = 0;
  const socket = createSocket(host.includes(':') ? 'udp6' : 'udp4');
  socket.on('message', (m, rinfo) => {
    count++;
    socket.send(`pong:${m.toString()}`, rinfo.port, rinfo.address);
  });
  socket.bind(port, host);
  await once(socket, 'listening');
  return { socket, port: socket.address().port, received: () => count };
}

/** A port nothing listens on (bound, closed). */
async function freePort(): Promise<number> {
  const s = createServer().listen(0, '127.0.0.1');
  await once(s, 'listening');
  const port = (s.address() as { port: number }).port;
  s.close();
  return port;
}

let pong: Awaited<ReturnType<typeof tcpServer>>;
let other: Awaited<ReturnType<typeof tcpServer>>;
beforeAll(async () => {
  pong = await tcpServer('127.0.0.1', 'pong');
  other = await tcpServer('127.0.0.1', 'other');
});
afterAll(() => {
  pong.server.close();
  other.server.close();
});

describe('TCP through the monitor', () => {
  it('an allowed port: a TCP exchange works from C', async () => {
    const { result, stdout } = await runClient(['tcp', '127.0.0.1', pong.port], (b) =>
      b.allowIPv4('127.0.0.1', pong.port),
    );
    expect(result.status).toBe('OK');
    expect(stdout).toBe('tcp: pong\n');
  });

  it('a non-blocking connect says EINPROGRESS, then completes', async () => {
    const { result, stdout } = await runClient(['nonblock', '127.0.0.1', pong.port], (b) =>
      b.allowIPv4('127.0.0.1', pong.port),
    );
    expect(result.status).toBe('OK');
    expect(stdout).toBe('nonblock: connect EINPROGRESS\nnonblock: pong\n');
  });

  it('works from a second thread', async () => {
    const { result, stdout } = await runClient(['thread', '127.0.0.1', pong.port], (b) =>
      b.allowIPv4('127.0.0.1/32', pong.port),
    );
    expect(result.status).toBe('OK');
    expect(stdout).toBe('thread: pong\n');
  });

  it('a denied port is a network violation naming the address; the call never returns', async () => {
    const before = other.connections();
    const { result, stdout } = await runClient(['tcp', '127.0.0.1', other.port], (b) =>
      b.allowIPv4('127.0.0.1', pong.port),
    );
    expect(result.status).toBe('VIOLATION');
    expect(result.violation).toMatchObject({
      kind: 'network',
      syscall: 'connect',
      address: `127.0.0.1:${other.port}`,
      rule: 'no allow rule matches',
    });
    expect(result.reason).toContain(`connect to 127.0.0.1:${other.port}`);
    expect(stdout).toBe('');
    expect(other.connections()).toBe(before);
  });

  it('a denied network (CIDR) is a violation', async () => {
    const { result } = await runClient(['tcp', '127.0.0.2', pong.port], (b) => b.allowIPv4('127.0.0.1/32'));
    expect(result.status).toBe('VIOLATION');
    expect(result.violation).toMatchObject({ kind: 'network', address: `127.0.0.2:${pong.port}` });
  });

  it('deny wins over allow ("no local nets": allow 0.0.0.0/0 but deny 127.0.0.0/8)', async () => {
    const { result } = await runClient(['tcp', '127.0.0.1', pong.port], (b) =>
      b.allowIPv4('0.0.0.0/0', pong.port).denyIPv4('10.0.0.0/8').denyIPv4('127.0.0.0/8').denyIPv4('169.254.0.0/16'),
    );
    expect(result.status).toBe('VIOLATION');
    expect(result.violation).toMatchObject({
      kind: 'network',
      address: `127.0.0.1:${pong.port}`,
      rule: 'denied by deny 127.0.0.0/8',
    });
  });

  it('0.0.0.0 and IPv4-mapped IPv6 are decided as what the kernel reaches (127.0.0.1)', async () => {
    const rules = (b: PolicyBuilder) => b.allowIPv4('0.0.0.0/0').allowIPv6('::/0').denyIPv4('127.0.0.0/8');
    const a = await runClient(['tcp', '0.0.0.0', pong.port], rules);
    expect(a.result.violation).toMatchObject({ kind: 'network', rule: 'denied by deny 127.0.0.0/8' });
    const b = await runClient(['tcp', '::ffff:127.0.0.1', pong.port], rules);
    expect(b.result.violation).toMatchObject({
      kind: 'network',
      address: `[::ffff:127.0.0.1]:${pong.port}`,
      rule: 'denied by deny 127.0.0.0/8',
    });
  });

  it('networkDenyAction({ errno }) fails the call instead, and the program goes on', async () => {
    const { result, stdout } = await runClient(['tcp', '127.0.0.1', other.port], (b) =>
      b.allowIPv4('127.0.0.1', pong.port).networkDenyAction({ errno: 'ECONNREFUSED' }),
    );
    expect(result.status).toBe('OK');
    expect(stdout).toBe('tcp: connect errno ECONNREFUSED\n');
  });

  it('a refused connection to an allowed address reports ECONNREFUSED', async () => {
    const port = await freePort();
    const { result, stdout } = await runClient(['tcp', '127.0.0.1', port], (b) => b.allowIPv4('127.0.0.1'));
    expect(result.status).toBe('OK');
    expect(stdout).toBe('tcp: connect errno ECONNREFUSED\n');
  });

  it('a thread rewriting the sockaddr after the call cannot change where the socket goes', async () => {
    const good = await tcpServer('127.0.0.1', '', (s) => s.end('G'));
    const bad = await tcpServer('127.0.0.1', '', (s) => s.end('B'));
    try {
      // Denied attempts fail (errno) so that the loop goes on: 300 decisions under the race.
      const { result, stdout } = await runClient(['race', '127.0.0.1', good.port, bad.port, 300], (b) =>
        b.allowIPv4('127.0.0.1', good.port).networkDenyAction({ errno: 'EACCES' }),
      );
      expect(result.status).toBe('OK');
      const m = /race: ok (\d+) failed (\d+)/.exec(stdout);
      expect(m).not.toBeNull();
      expect(Number(m![1]) + Number(m![2])).toBe(300);
      expect(Number(m![1])).toBeGreaterThan(0);
      expect(bad.connections()).toBe(0);
      expect(good.connections()).toBe(Number(m![1]));
      // The same race as violations: either all went well or the sandbox died; never a leak.
      const v = await runClient(['race', '127.0.0.1', good.port, bad.port, 300], (b) =>
        b.allowIPv4('127.0.0.1', good.port),
      );
      expect(['OK', 'VIOLATION']).toContain(v.result.status);
      if (v.result.status === 'VIOLATION') expect(v.result.violation?.address).toBe(`127.0.0.1:${bad.port}`);
      expect(bad.connections()).toBe(0);
    } finally {
      good.server.close();
      bad.server.close();
    }
  });
});

describe("the monitor's decision", () => {
  it('agrees with decideNetwork() on 5,000 random rule sets and destinations', () => {
    let seed = 12345;
    const rnd = (n: number) => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 8) % n;
    const pick = <T>(xs: readonly T[]): T => xs[rnd(xs.length)]!;
    const v4Nets = ['10.0.0.0', '10.1.2.3', '127.0.0.1', '192.168.0.0', '169.254.169.254', '0.0.0.0', '93.184.216.34'];
    const v6Nets = ['2001:db8::', '2001:db8:1::5', '::1', '::', 'fe80::', 'fc00::'];
    const ports = [0, 0, 53, 80, 443, 8080];
    for (let round = 0; round < 250; round++) {
      const b = new PolicyBuilder();
      for (let i = 0, n = 1 + rnd(6); i < n; i++) {
        const v6 = rnd(3) === 0;
        const base = pick(v6 ? v6Nets : v4Nets);
        const max = v6 ? 128 : 32;
        // Only prefixes whose host bits are clear in `base` build; the rest are skipped as problems.
        const prefix = pick([0, 8, 16, 24, max, max]);
        const probe = new PolicyBuilder();
        const method = (deny: boolean) =>
          (v6 ? (deny ? 'denyIPv6' : 'allowIPv6') : deny ? 'denyIPv4' : 'allowIPv4') as 'allowIPv4';
        const deny = rnd(3) === 0;
        probe[method(deny)](`${base}/${Math.min(prefix, max)}`, pick(ports));
        if (probe.problems.length) continue;
        b[method(deny)](`${base}/${Math.min(prefix, max)}`, pick(ports));
        if (rnd(5) === 0) b.allowDns([pick(v6 ? v6Nets : v4Nets)]);
      }
      const network = b.build().network;
      const table = encodeNetworkTable(network, NET_SYSCALL_BITS.connect);
      for (let k = 0; k < 20; k++) {
        const port = pick([53, 80, 443, 8080, 9]);
        const kind = rnd(3);
        let sa: Buffer;
        let dest: { family: 4 | 6; bytes: number[]; port: number };
        if (kind === 0) {
          const bytes = pick(v4Nets).split('.').map(Number);
          bytes[3] = rnd(2) ? bytes[3]! : rnd(256);
          bytes[2] = rnd(4) ? bytes[2]! : rnd(256);
          sa = Buffer.alloc(16);
          sa.writeUInt16LE(2, 0);
          sa.writeUInt16BE(port, 2);
          Buffer.from(bytes).copy(sa, 4);
          dest = { family: 4, bytes, port };
        } else {
          const mapped = kind === 1;
          const bytes = mapped
            ? [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, ...pick(v4Nets).split('.').map(Number)]
            : [...Buffer.alloc(16)];
          if (!mapped) {
            const text = pick(v6Nets);
            const parts = text.split('::');
            const head = parts[0] ? parts[0].split(':') : [];
            const tail = parts[1] ? parts[1].split(':') : [];
            const groups = [...head, ...new Array<string>(8 - head.length - tail.length).fill('0'), ...tail].map((g) =>
              parseInt(g || '0', 16),
            );
            for (const [i, g] of groups.entries()) {
              bytes[2 * i] = g >> 8;
              bytes[2 * i + 1] = g & 0xff;
            }
            if (rnd(2)) bytes[15] = rnd(256);
          }
          sa = Buffer.alloc(28);
          sa.writeUInt16LE(10, 0);
          sa.writeUInt16BE(port, 2);
          Buffer.from(bytes).copy(sa, 8);
          dest = { family: 6, bytes, port };
        }
        const ts = decideNetwork(network, dest);
        const nat = native().netDecide(table, sa);
        expect(nat, JSON.stringify({ network, dest })).toMatchObject({ allowed: ts.allowed, rule: ts.rule });
      }
    }
    // Not an IP address: no decision (the monitor answers EINVAL).
    expect(
      native().netDecide(encodeNetworkTable({ mode: 'rules', rules: [] }, 1), Buffer.from([2, 0, 0, 80])),
    ).toBeNull();
  });
});

describe('what the monitor carries out for the sandboxee', () => {
  it('odd and hostile calls get the errors the kernel itself gives (bad pointers, lengths, fds, a pipe)', async () => {
    const plain = spawnSync(client(), ['bad', '127.0.0.1', String(pong.port)], { encoding: 'utf8' }).stdout;
    expect(plain.split('\n').filter(Boolean)).toHaveLength(8);
    const { result, stdout } = await runClient(['bad', '127.0.0.1', pong.port], (b) => b.allowIPv4('127.0.0.1'));
    expect(result.status).toBe('OK');
    expect(stdout).toBe(plain);
  });

  it('sendmsg on a socket of the host (emulated, two iovecs) reaches the peer', async () => {
    const { result, stdout } = await runClient(['tcp-sendmsg', '127.0.0.1', pong.port], (b) =>
      b.allowIPv4('127.0.0.1', pong.port),
    );
    expect(result.status).toBe('OK');
    expect(stdout).toBe('tcp-sendmsg: pong\n');
  });

  it('sendmsg with SCM_RIGHTS inside the sandbox still passes the fd (the comms path)', async () => {
    const { result, stdout } = await runClient(['scm', '-'], (b) => b.allowIPv4('127.0.0.1', pong.port));
    expect(result.status).toBe('OK');
    expect(stdout).toBe('scm: via-fd\n');
  });

  it("listen works on the sandbox's own sockets and never on one of the host", async () => {
    const { result, stdout } = await runClient(['listen', '127.0.0.1', pong.port], (b) =>
      b.allowIPv4('127.0.0.1', pong.port),
    );
    expect(result.status).toBe('OK');
    expect(stdout).toBe('listen: sandbox 0\nlisten: host errno EINVAL\n');
  });

  it("bind works on the sandbox's own sockets, never on one of the host (a failed connect leaves it unbound), and a path is a violation", async () => {
    const port = await freePort();
    const { result, stdout } = await runClient(['bind', '127.0.0.1', port], (b) => b.allowIPv4('127.0.0.1', port));
    expect(stdout).toBe(`bind: sandbox 0\nbind: connect ECONNREFUSED, socket of the host 1\nbind: host errno EINVAL\n`);
    expect(result.status).toBe('VIOLATION');
    expect(result.violation).toMatchObject({ kind: 'network', syscall: 'bind' });
    expect(result.violation?.address).toBe('unix:/tmp/sbx-bind-probe');
  });
});

describe('blocking connects that take time', () => {
  /** A C server (net_client hold) whose queue a connection from here fills: the sandboxee's SYN is
   *  dropped until the server starts accepting after `delayMs` (the SYN is resent after 1 s). */
  async function heldServer(delayMs: number) {
    const child = spawn(client(), ['hold', '127.0.0.1', '0', String(delayMs)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const [chunk] = (await once(child.stdout!, 'data')) as [Buffer];
    const port = Number(chunk.toString().trim());
    const { connect } = await import('node:net');
    const filler = connect(port, '127.0.0.1');
    filler.on('error', () => {});
    await once(filler, 'connect');
    return {
      port,
      close: () => {
        filler.destroy();
        return child.kill('SIGKILL');
      },
    };
  }

  it('wait in the kernel, not in the monitor: another sandbox connects meanwhile; the connect completes', async () => {
    const held = await heldServer(300);
    try {
      const t0 = performance.now();
      let slowMs = 0;
      const slow = runClient(['tcp', '127.0.0.1', held.port], (b) => b.allowIPv4('127.0.0.1')).then((r) => {
        slowMs = performance.now() - t0;
        return r;
      });
      await new Promise((r) => setTimeout(r, 100)); // the slow one is parked by now
      const fast = await runClient(['tcp', '127.0.0.1', pong.port], (b) => b.allowIPv4('127.0.0.1'));
      const fastMs = performance.now() - t0;
      expect(fast.stdout).toBe('tcp: pong\n');
      const { result, stdout } = await slow;
      expect(result.status).toBe('OK');
      expect(stdout).toBe('tcp: x\n');
      expect(fastMs).toBeLessThan(slowMs);
      expect(result.walltimeMs).toBeGreaterThan(700); // the SYN went again after 1 s
    } finally {
      held.close();
    }
  });

  it('leave no fd behind in the executor, also when the sandbox dies while a connect waits', async () => {
    const held = await heldServer(60_000);
    const before = openFdCount();
    try {
      const { result } = await runClient(['tcp', '127.0.0.1', held.port], (b) => b.allowIPv4('127.0.0.1'), 1);
      expect(result.status).toBe('TIMEOUT');
      for (const mode of ['tcp', 'nonblock', 'udp-sendmmsg'])
        await runClient([mode, '127.0.0.1', pong.port], (b) => b.allowIPv4('127.0.0.1'));
      await tick(100);
      expect(openFdCount()).toBeLessThanOrEqual(before); // a leak only adds fds; a finalizer elsewhere may close one meanwhile
    } finally {
      held.close();
    }
  });

  // The monitor's connect takes one trip to its capless thread when the connect completes at once
  // (or the caller does not block); these are the paths that leave that trip for the slower ones.
  it('a non-blocking connect still under way: EINPROGRESS at once, then it completes', async () => {
    const held = await heldServer(300);
    try {
      const { result, stdout } = await runClient(['nonblock', '127.0.0.1', held.port], (b) => b.allowIPv4('127.0.0.1'));
      expect(stdout, result.toString()).toBe('nonblock: connect EINPROGRESS\nnonblock: x\n');
      expect(result.status).toBe('OK');
    } finally {
      held.close();
    }
  });

  it('a blocking connect interrupted by a signal says EINTR, leaves no fd behind, and the next connect works', async () => {
    const held = await heldServer(60_000);
    const before = openFdCount();
    try {
      const { result, stdout } = await runClient(['eintr', '127.0.0.1', held.port, 200, pong.port], (b) =>
        b.allowIPv4('127.0.0.1').allowHandleSignals().allowAlarm(),
      );
      expect(stdout, result.toString()).toBe('eintr: connect errno EINTR\neintr: pong\n');
      expect(result.status).toBe('OK');
      await tick(100);
      expect(openFdCount()).toBeLessThanOrEqual(before);
    } finally {
      held.close();
    }
  });

  it('a refused connect, blocking or not, says what the kernel says without a sandbox', async () => {
    const port = await freePort();
    for (const mode of ['tcp', 'nonblock']) {
      const plain = spawnSync(client(), [mode, '127.0.0.1', String(port)], { encoding: 'utf8' });
      expect(plain.stdout).toMatch(/ECONNREFUSED/);
      const { result, stdout } = await runClient([mode, '127.0.0.1', port], (b) => b.allowIPv4('127.0.0.1'));
      expect(stdout, result.toString()).toBe(plain.stdout);
      expect(result.status).toBe('OK');
    }
  });

  it('a non-blocking connect the rules deny: a violation, or the chosen errno, never EINPROGRESS', async () => {
    const before = other.connections();
    const killed = await runClient(['nonblock', '127.0.0.1', other.port], (b) => b.allowIPv4('127.0.0.1', pong.port));
    expect(killed.result.status).toBe('VIOLATION');
    expect(killed.result.violation).toMatchObject({ kind: 'network', address: `127.0.0.1:${other.port}` });
    expect(killed.stdout).toBe('');
    const refused = await runClient(['nonblock', '127.0.0.1', other.port], (b) =>
      b.allowIPv4('127.0.0.1', pong.port).networkDenyAction({ errno: 'EACCES' }),
    );
    expect(refused.stdout, refused.result.toString()).toBe('nonblock: connect errno EACCES\n');
    expect(other.connections()).toBe(before);
  });

  it('SO_SNDTIMEO bounds a blocking connect: EINPROGRESS after the timeout, as the kernel does', async () => {
    const held = await heldServer(60_000);
    try {
      const { result, stdout } = await runClient(['timeout', '127.0.0.1', held.port, 300], (b) =>
        b.allowIPv4('127.0.0.1'),
      );
      expect(result.status).toBe('OK');
      expect(stdout).toBe('timeout: connect errno EINPROGRESS\n');
      expect(result.walltimeMs).toBeGreaterThan(250);
      expect(result.walltimeMs).toBeLessThan(5000);
    } finally {
      held.close();
    }
  });
});

describe('IPv6', () => {
  let v6: Awaited<ReturnType<typeof tcpServer>>;
  beforeAll(async () => {
    v6 = await tcpServer('::1', 'pong6');
  });
  afterAll(() => v6.server.close());

  it('::1 allowed: the exchange works', async () => {
    const { result, stdout } = await runClient(['tcp', '::1', v6.port], (b) => b.allowIPv6('::1', v6.port));
    expect(result.status).toBe('OK');
    expect(stdout).toBe('tcp: pong6\n');
  });

  it('::1 denied: a violation with the bracketed address', async () => {
    const { result } = await runClient(['tcp', '::1', v6.port], (b) =>
      b.allowIPv6('::1', v6.port + 1 > 65535 ? 1 : v6.port + 1),
    );
    expect(result.status).toBe('VIOLATION');
    expect(result.violation).toMatchObject({ kind: 'network', syscall: 'connect', address: `[::1]:${v6.port}` });
  });
});

describe('UDP', () => {
  let udp: Awaited<ReturnType<typeof udpServer>>;
  beforeAll(async () => {
    udp = await udpServer();
  });
  afterAll(() => udp.socket.close());

  for (const mode of ['udp', 'udp-connect', 'udp-sendmsg']) {
    it(`${mode} to an allowed port works`, async () => {
      const { result, stdout } = await runClient([mode, '127.0.0.1', udp.port], (b) =>
        b.allowIPv4('127.0.0.1', udp.port),
      );
      expect(result.status).toBe('OK');
      expect(stdout).toBe(`${mode}: pong:ping\n`);
    });
  }

  it('sendmmsg on a connected socket sends both datagrams and fills msg_len (the glibc resolver does this)', async () => {
    const { result, stdout } = await runClient(['udp-sendmmsg', '127.0.0.1', udp.port], (b) =>
      b.allowIPv4('127.0.0.1', udp.port),
    );
    expect(result.status).toBe('OK');
    expect(stdout.split('\n').filter(Boolean).sort()).toEqual(['udp-sendmmsg: pong:ping', 'udp-sendmmsg: pong:pong']);
  });

  it('sendto another port is refused: a violation naming it', async () => {
    const port = await freePort();
    const before = udp.received();
    const { result, stdout } = await runClient(['udp', '127.0.0.1', port], (b) => b.allowIPv4('127.0.0.1', udp.port));
    expect(result.status).toBe('VIOLATION');
    expect(result.violation).toMatchObject({ kind: 'network', syscall: 'sendto', address: `127.0.0.1:${port}` });
    expect(stdout).toBe('');
    expect(udp.received()).toBe(before);
  });

  it('sendmsg with a denied msg_name is refused too (errno mode)', async () => {
    const port = await freePort();
    const { result, stdout } = await runClient(['udp-sendmsg', '127.0.0.1', port], (b) =>
      b.allowIPv4('127.0.0.1', udp.port).networkDenyAction({ errno: 'EACCES' }),
    );
    expect(result.status).toBe('OK');
    expect(stdout).toBe('udp-sendmsg: sendmsg errno EACCES\n');
  });

  it.skipIf(!asRoot)(
    'the DNS exception: port 53 to a named resolver passes a deny of its network (UDP and TCP)',
    async () => {
      const dns = await udpServer('127.0.0.1', 53);
      const dnsTcp = await tcpServer('127.0.0.1', 'tcp53', undefined, 53);
      try {
        const rules = (b: PolicyBuilder) => b.allowIPv4('0.0.0.0/0').denyIPv4('127.0.0.0/8').allowDns(['127.0.0.1']);
        const a = await runClient(['udp', '127.0.0.1', 53], rules);
        expect(a.result.status).toBe('OK');
        expect(a.stdout).toBe('udp: pong:ping\n');
        const t = await runClient(['tcp', '127.0.0.1', 53], rules);
        expect(t.result.status).toBe('OK');
        expect(t.stdout).toBe('tcp: tcp53\n');
        const b = await runClient(['udp', '127.0.0.1', udp.port], rules);
        expect(b.result.violation).toMatchObject({ kind: 'network', rule: 'denied by deny 127.0.0.0/8' });
      } finally {
        dns.socket.close();
        dnsTcp.server.close();
      }
    },
  );
});

describe('unix sockets under network rules', () => {
  let dir: string;
  let path: string;
  let server: Server;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'sbx-net-'));
    chmodSync(dir, 0o755);
    path = join(dir, 's.sock');
    server = createServer((s) => s.once('data', () => s.end('unix-pong')));
    server.listen(path);
    await once(server, 'listening');
    // The monitor connects as the sandbox's own uid: the socket must let others in.
    chmodSync(path, 0o777);
  });
  afterAll(() => {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a path connect is refused unless allowed: a violation naming unix:<path>', async () => {
    const { result, stdout } = await runClient(['unix', path], (b) =>
      b.addDirectory(dir).allowIPv4('127.0.0.1', pong.port),
    );
    expect(result.status).toBe('VIOLATION');
    expect(result.violation).toMatchObject({ kind: 'network', syscall: 'connect', address: `unix:${path}` });
    expect(stdout).toBe('');
  });

  it('allowUnixSocket(path) lets exactly that path through', async () => {
    const { result, stdout } = await runClient(['unix', path], (b) => b.addDirectory(dir).allowUnixSocket(path));
    expect(result.status).toBe('OK');
    expect(stdout).toBe('unix: unix-pong\n');
  });
});

describe('sbx run --net', () => {
  const sbxBin = join(repoRoot, 'packages', 'executor', 'bin', 'sbx.js');
  // The CLI runs in a child process; the servers here must keep answering meanwhile: async spawn.
  const sbx = (args: string[]) =>
    new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, [sbxBin, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d) => (stdout += d));
      child.stderr.on('data', (d) => (stderr += d));
      child.on('close', (code) => resolve({ code, stdout, stderr }));
    });

  it('allow=CIDR:PORT lets the default policy connect there, and nowhere else', async () => {
    const ok = await sbx([
      'run',
      '--net',
      `allow=127.0.0.1:${pong.port}`,
      '--',
      client(),
      'tcp',
      '127.0.0.1',
      String(pong.port),
    ]);
    expect(ok).toMatchObject({ code: 0, stdout: 'tcp: pong\n' });
    const denied = await sbx([
      'run',
      '--net',
      `allow=127.0.0.1:${pong.port}`,
      '--',
      client(),
      'tcp',
      '127.0.0.1',
      String(other.port),
    ]);
    expect(denied.code).toBe(159);
    expect(denied.stderr).toContain(`network violation: [x86_64] connect`);
    expect(denied.stderr).toContain(`to 127.0.0.1:${other.port} (no allow rule matches)`);
  });

  it('deny= wins, [IPv6]:PORT parses, dns= binds a resolv.conf naming the resolver', async () => {
    const d = await sbx([
      'run',
      '--net',
      'allow=0.0.0.0/0',
      '--net',
      'deny=127.0.0.0/8',
      '--',
      client(),
      'tcp',
      '127.0.0.1',
      String(pong.port),
    ]);
    expect(d.code).toBe(159);
    expect(d.stderr).toContain('(denied by deny 127.0.0.0/8)');
    const v6 = await sbx([
      'run',
      '--net',
      `allow=[::ffff:127.0.0.1]:${pong.port}`,
      '--',
      client(),
      'tcp',
      '127.0.0.1',
      String(pong.port),
    ]);
    expect(v6).toMatchObject({ code: 0, stdout: 'tcp: pong\n' });
    const dns = await sbx([
      'run',
      '--net',
      'dns=10.9.8.7',
      '--net',
      'dns=2001:db8::53',
      '--',
      '/bin/cat',
      '/etc/resolv.conf',
    ]);
    expect(dns).toMatchObject({ code: 0, stdout: 'nameserver 10.9.8.7\nnameserver 2001:db8::53\n' });
  });

  it('bad --net values are usage errors (exit 2)', async () => {
    for (const [flag, message] of [
      ['allow=10.0.0.1/8', /host bits are set/],
      ['allow=10.0.0.0/8:99999', /the port must be 0..65535/],
      ['dns=resolver.example', /is not an IP address/],
      ['deny=', /--net expects none or host, or rules/],
    ] as const) {
      const r = await sbx(['run', '--net', flag, '--', '/bin/true']);
      expect(r.code, flag).toBe(2);
      expect(r.stderr).toMatch(message);
    }
    const both = await sbx(['run', '--net', 'host', '--net', 'allow=10.0.0.0/8', '--', '/bin/true']);
    expect(both.code).toBe(2);
    expect(both.stderr).toMatch(/cannot be combined/);
  });
});

describe('network modes', () => {
  it('unrestricted mode reaches the host loopback directly', async () => {
    const { result, stdout } = await runClient(['tcp', '127.0.0.1', pong.port], (b) => b.allowUnrestrictedNetworking());
    expect(result.status).toBe('OK');
    expect(stdout).toBe('tcp: pong\n');
  });

  it('default mode reaches nothing: its own lo has no server', async () => {
    const before = pong.connections();
    const { result, stdout } = await runClient(['tcp', '127.0.0.1', pong.port], () => {});
    expect(result.status).toBe('OK');
    expect(stdout).toBe('tcp: connect errno ECONNREFUSED\n');
    expect(pong.connections()).toBe(before);
  });
});

describe('Node clients under network rules', () => {
  const node = (script: string, rules: (b: PolicyBuilder) => void) =>
    runCaptured([process.execPath, '--input-type=module', '-e', script], {
      policy: isolationPolicy(rules),
      executor: { limits: { walltime: 30 }, env: { PATH: '/usr/bin:/bin' } },
    });

  it('net.connect exchanges data with an allowed server', async () => {
    const { result, stdout, stderr } = await node(
      `import net from 'node:net'; const s = net.connect(${pong.port}, '127.0.0.1', () => s.write('hi')); s.on('data', (d) => { console.log('got ' + d); s.end(); });`,
      (b) => b.allowIPv4('127.0.0.1', pong.port),
    );
    expect(stderr).toBe('');
    expect(result.status).toBe('OK');
    expect(stdout).toBe('got pong\n');
  });

  it('fetch() reaches an allowed local HTTP server', async () => {
    const http = createHttpServer((req, res) => res.end(`hello ${req.url}`));
    http.listen(0, '127.0.0.1');
    await once(http, 'listening');
    const port = (http.address() as { port: number }).port;
    try {
      const { result, stdout, stderr } = await node(
        `const r = await fetch('http://127.0.0.1:${port}/x'); console.log(r.status, await r.text());`,
        (b) => b.allowIPv4('127.0.0.1', port),
      );
      expect(stderr).toBe('');
      expect(result.status).toBe('OK');
      expect(stdout).toBe('200 hello /x\n');
    } finally {
      http.close();
    }
  });

  it('net.connect to a denied port is a network violation', async () => {
    const { result } = await node(`import net from 'node:net'; net.connect(${other.port}, '127.0.0.1');`, (b) =>
      b.allowIPv4('127.0.0.1', pong.port),
    );
    expect(result.status).toBe('VIOLATION');
    expect(result.violation).toMatchObject({ kind: 'network', syscall: 'connect', address: `127.0.0.1:${other.port}` });
  });

  it('sandbox-me-here mode: UDP to an allowed port works, to another is refused', async () => {
    const udp = await udpServer();
    try {
      const script =
        `import dgram from 'node:dgram'; import { Client } from '@sbx/client'; Client.sandboxMeHere();` +
        `const s = dgram.createSocket('udp4'); s.send('x', ${udp.port}, '127.0.0.1', (e) => { console.log(e ? e.code : 'sent');` +
        ` s.send('y', ${udp.port + 1}, '127.0.0.1', (e2) => { console.log(e2 ? e2.code : 'sent'); s.close(); }); });`;
      const b = new PolicyBuilder()
        .allowNodeRuntime({ threads: false })
        .allowNetworkClient()
        .allowSyscall('bind')
        .allowIPv4('127.0.0.1', udp.port)
        .networkDenyAction({ errno: 'EACCES' });
      addNodeView(b);
      const { result, stdout } = await runNodeMeHere(script, b.build());
      expect(result.status).toBe('OK');
      expect(stdout).toBe('sent\nEACCES\n');
      expect(udp.received()).toBe(1);
    } finally {
      udp.socket.close();
    }
  });

  it("sandbox-me-here mode: a UDP socket put at the handshake's fd number cannot send past the rules", async () => {
    const udp = await udpServer();
    const denied = await udpServer();
    try {
      const bin = testcase('client_me_here');
      const b = new PolicyBuilder()
        .allowWrite()
        .allowExit()
        .allowSystemMalloc()
        .allowSyscalls(['read', 'fstat', 'newfstatat', 'rt_sigprocmask', 'dup2', 'dup3', 'close']);
      b.allowNetworkClient().allowIPv4('127.0.0.1', udp.port).networkDenyAction({ errno: 'EACCES' });
      b.addFile(bin).addLibrariesForBinary(bin);
      const { result, stdout } = await runCaptured([bin, 'udp-at-handshake', String(udp.port), String(denied.port)], {
        policy: b.build(),
        executor: { enableSandboxBeforeExec: false, env: { PATH: '/usr/bin:/bin' }, limits: { walltime: 20 } },
      });
      expect(result.status, stdout).toBe('OK');
      expect(stdout).toBe(
        'me_here: ok\nfirst: 1\ndup2: 1020\nsendto-denied: errno EACCES\nsendmsg-denied: errno EACCES\nsend-connected: 1\n',
      );
      expect(udp.received()).toBe(2);
      expect(denied.received()).toBe(0);
    } finally {
      udp.socket.close();
      denied.socket.close();
    }
  });

  it('sandbox-me-here mode: the rules hold for a Node sandboxee that sandboxed itself', async () => {
    const script =
      `import net from 'node:net'; import { Client } from '@sbx/client'; Client.sandboxMeHere();` +
      `const s = net.connect(${pong.port}, '127.0.0.1', () => s.write('hi')); s.on('data', (d) => { console.log('got ' + d); s.end(); });` +
      `s.on('end', () => net.connect(${other.port}, '127.0.0.1'));`;
    const b = new PolicyBuilder()
      .allowNodeRuntime({ threads: false })
      .allowNetworkClient()
      .allowIPv4('127.0.0.1', pong.port);
    addNodeView(b);
    const { result, stdout } = await runNodeMeHere(script, b.build());
    expect(stdout, result.toString()).toBe('got pong\n');
    expect(result.status).toBe('VIOLATION');
    expect(result.violation).toMatchObject({ kind: 'network', syscall: 'connect', address: `127.0.0.1:${other.port}` });
  });
});
