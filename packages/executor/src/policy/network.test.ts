// Network rules in the policy layer: the builder's rule methods, the policy file's network part,
// the reference decision (precedence dns > deny > allow, normalization), the monitor's table, and
// the filter: which calls go to the monitor, checked against the policy model on every number.
import { describe, expect, it } from 'vitest';
import {
  ALLOW,
  ARG_32,
  AUDIT_ARCH_X86_64,
  JEQ,
  KILL,
  LABEL,
  SECCOMP_RET_ALLOW,
  SECCOMP_RET_ERRNO,
  SECCOMP_RET_USER_NOTIF,
} from './bpf.js';
import { classify } from './classify.js';
import { NOTIFY_DATA, compilePolicy, networkDecidedBits } from './compiler.js';
import { PolicyError } from './errors.js';
import { evaluate } from './evaluator.js';
import { modelVerdict } from './model.js';
import { NET_SYSCALL_BITS, NET_TABLE_MAGIC, decideNetwork, encodeNetworkTable, parseIpAddress } from './network.js';
import { Policy } from './policy.js';
import { PolicyBuilder } from './policy-builder.js';
import { SYSCALL_TABLES, syscallNumber } from './syscalls.js';

const x64 = (): PolicyBuilder => new PolicyBuilder({ arch: 'x86_64' });
const nr = (name: string): number => syscallNumber('x86_64', name)!;
const NET_NOTIFY = (SECCOMP_RET_USER_NOTIF | NOTIFY_DATA.NETWORK) >>> 0;
const MSG_FASTOPEN = 0x20000000n;

function problemsOf(f: () => unknown): string[] {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(PolicyError);
    return (e as PolicyError).problems;
  }
  throw new Error('expected a PolicyError');
}

const v4 = (ip: string, port: number) => ({ family: 4 as const, bytes: ip.split('.').map(Number), port });
function v6(ip: string, port: number) {
  const p = parseIpAddress(ip)!;
  const groups = p.address.includes('::') ? expandV6(p.address) : p.address.split(':');
  return { family: 6 as const, bytes: groups.flatMap((g) => [parseInt(g, 16) >> 8, parseInt(g, 16) & 0xff]), port };
}
function expandV6(a: string): string[] {
  const [h, t] = a.split('::') as [string, string];
  const hs = h ? h.split(':') : [];
  const ts = t ? t.split(':') : [];
  return [...hs, ...new Array<string>(8 - hs.length - ts.length).fill('0'), ...ts];
}

describe('PolicyBuilder network rules', () => {
  it('stores allow, deny and dns rules, unix paths and the deny action as data', () => {
    const p = x64()
      .allowIPv4('0.0.0.0/0', 443)
      .denyIPv4('10.0.0.0/8')
      .denyIPv6('fc00::/7', 443)
      .allowDns(['10.0.0.2', '2001:4860:4860::8888'])
      .allowUnixSocket('/run/app.sock')
      .networkDenyAction({ errno: 'ECONNREFUSED' })
      .build();
    expect(p.network).toEqual({
      mode: 'rules',
      rules: [
        { family: 4, address: '0.0.0.0', prefix: 0, port: 443 },
        { family: 4, address: '10.0.0.0', prefix: 8, port: 0, action: 'deny' },
        { family: 6, address: 'fc00::', prefix: 7, port: 443, action: 'deny' },
        { family: 4, address: '10.0.0.2', prefix: 32, port: 53, action: 'dns' },
        { family: 6, address: '2001:4860:4860::8888', prefix: 128, port: 53, action: 'dns' },
      ],
      unixSockets: ['/run/app.sock'],
      onDeny: { errno: 111 },
    });
  });

  it('reports bad rules together', () => {
    const problems = problemsOf(() =>
      x64()
        .denyIPv4('10.0.0.1/8')
        .allowDns(['dns.example.com'])
        .allowUnixSocket('relative.sock')
        .allowUnixSocket('/run/../x.sock')
        .allowUnixSocket(`/${'x'.repeat(120)}`)
        .networkDenyAction({ errno: 'ENOPE' })
        .build(),
    ).join('\n');
    expect(problems).toMatch(/denyIPv4\("10.0.0.1\/8"\): host bits are set/);
    expect(problems).toMatch(/allowDns: "dns.example.com" is not an IP address/);
    expect(problems).toMatch(/must be absolute/);
    expect(problems).toMatch(/not canonical/);
    expect(problems).toMatch(/longer than 107 bytes/);
    expect(problems).toMatch(/unknown errno name "ENOPE"/);
    expect(problemsOf(() => x64().allowUnrestrictedNetworking().allowDns(['1.1.1.1']).build())[0]).toMatch(
      /would have no effect/,
    );
    expect(problemsOf(() => x64().denyIPv4('10.0.0.0/8').allowUnrestrictedNetworking().build())[0]).toMatch(
      /use one or the other/,
    );
    expect(() => x64().networkDenyAction('kill' as never)).toThrow(TypeError);
    expect(() => x64().allowDns('1.1.1.1' as never)).toThrow(TypeError);
  });

  it('allowNetworkClient allows the client calls and socket() for unix, IPv4 and IPv6 only', () => {
    const p = x64().allowNetworkClient().build();
    const prog = compilePolicy(p, { monitor: true });
    const socket = (domain: number) =>
      evaluate(prog.program, { nr: nr('socket'), arch: AUDIT_ARCH_X86_64, args: [domain, 1, 0] });
    expect(socket(2).action).toBe('ALLOW');
    expect(socket(10).action).toBe('ALLOW');
    expect(socket(1).action).toBe('ALLOW');
    expect(socket(16)).toMatchObject({ action: 'ERRNO', data: 97 }); // AF_NETLINK: EAFNOSUPPORT
    expect(socket(40)).toMatchObject({ action: 'ERRNO', data: 97 }); // AF_VSOCK
    expect(evaluate(prog.program, { nr: nr('connect'), arch: AUDIT_ARCH_X86_64 }).action).toBe('ALLOW'); // mode 'none'
    expect(evaluate(prog.program, { nr: nr('listen'), arch: AUDIT_ARCH_X86_64 }).action).toBe('USER_NOTIF'); // a violation
  });

  it('round-trips through the policy file and checks its network part', () => {
    const p = x64()
      .allowIPv4('10.0.0.0/8', 443)
      .denyIPv4('10.1.0.0/16')
      .allowDns(['10.0.0.2'])
      .allowUnixSocket('/run/a.sock')
      .networkDenyAction({ errno: 13 })
      .build();
    const q = Policy.fromJSON(JSON.parse(JSON.stringify(p)));
    expect(q.network).toEqual(p.network);
    const bad = (network: unknown) =>
      problemsOf(() => Policy.fromJSON({ ...(p.toJSON() as object), network })).join('\n');
    expect(bad({ mode: 'sideways', rules: [] })).toMatch(/network.mode must be/);
    expect(bad({ mode: 'rules', rules: [{ family: 4, address: '10.0.0.1', prefix: 8, port: 0 }] })).toMatch(
      /host bits are set/,
    );
    expect(
      bad({ mode: 'rules', rules: [{ family: 4, address: '10.0.0.0', prefix: 8, port: 0, action: 'maybe' }] }),
    ).toMatch(/action must be "deny" or "dns"/);
    expect(
      bad({ mode: 'rules', rules: [{ family: 4, address: '10.0.0.0', prefix: 8, port: 80, action: 'dns' }] }),
    ).toMatch(/a dns rule is one address/);
    expect(bad({ mode: 'none', rules: [{ family: 4, address: '10.0.0.0', prefix: 8, port: 0 }] })).toMatch(
      /rules need mode "rules"/,
    );
    expect(bad({ mode: 'rules', rules: [], unixSockets: ['x'] })).toMatch(/must be absolute/);
    expect(bad({ mode: 'rules', rules: [], onDeny: { errno: 0 } })).toMatch(/onDeny must be/);
    expect(Policy.fromJSON({ ...(p.toJSON() as object), network: undefined }).network).toEqual({
      mode: 'none',
      rules: [],
    });
  });
});

describe("decideNetwork (the monitor's precedence, in TypeScript)", () => {
  const p = x64()
    .allowIPv4('0.0.0.0/0', 443)
    .allowIPv4('192.168.1.0/24')
    .denyIPv4('10.0.0.0/8')
    .denyIPv4('127.0.0.0/8')
    .denyIPv4('169.254.0.0/16')
    .allowIPv6('2001:db8::/32', 443)
    .allowDns(['10.0.0.2'])
    .build().network;

  it('allows by CIDR and port; nothing matching is denied (rule -1)', () => {
    expect(decideNetwork(p, v4('93.184.216.34', 443))).toEqual({ allowed: true, rule: 0 });
    expect(decideNetwork(p, v4('93.184.216.34', 80))).toEqual({ allowed: false, rule: -1 });
    expect(decideNetwork(p, v4('192.168.1.77', 22))).toEqual({ allowed: true, rule: 1 });
    expect(decideNetwork(p, v4('192.168.2.1', 22))).toEqual({ allowed: false, rule: -1 });
    expect(decideNetwork(p, v6('2001:db8::1', 443))).toEqual({ allowed: true, rule: 5 });
    expect(decideNetwork(p, v6('2001:db9::1', 443))).toEqual({ allowed: false, rule: -1 });
  });

  it('deny wins over allow; the dns exception wins over deny, for port 53 to that resolver only', () => {
    expect(decideNetwork(p, v4('10.1.2.3', 443))).toEqual({ allowed: false, rule: 2 });
    expect(decideNetwork(p, v4('169.254.169.254', 443))).toEqual({ allowed: false, rule: 4 });
    expect(decideNetwork(p, v4('10.0.0.2', 53))).toEqual({ allowed: true, rule: 6 });
    expect(decideNetwork(p, v4('10.0.0.2', 443))).toEqual({ allowed: false, rule: 2 });
    expect(decideNetwork(p, v4('10.0.0.3', 53))).toEqual({ allowed: false, rule: 2 });
  });

  it('IPv4-mapped IPv6 is IPv4; the unspecified address is the local host', () => {
    expect(decideNetwork(p, v6('::ffff:10.1.2.3', 443))).toEqual({ allowed: false, rule: 2 });
    expect(decideNetwork(p, v6('::ffff:93.184.216.34', 443))).toEqual({ allowed: true, rule: 0 });
    expect(decideNetwork(p, v4('0.0.0.0', 443))).toEqual({ allowed: false, rule: 3 });
    const loop6 = x64().allowIPv6('::1', 80).build().network;
    expect(decideNetwork(loop6, v6('::', 80))).toEqual({ allowed: true, rule: 0 });
  });
});

describe("the monitor's rule table", () => {
  it('has the documented layout', () => {
    const net = x64()
      .allowIPv4('10.0.0.0/8', 443)
      .denyIPv6('fc00::/7')
      .allowUnixSocket('/run/a.sock')
      .networkDenyAction({ errno: 13 })
      .build().network;
    const b = encodeNetworkTable(net, NET_SYSCALL_BITS.connect | NET_SYSCALL_BITS.sendto);
    expect(b.readUInt32LE(0)).toBe(NET_TABLE_MAGIC);
    expect(b.readUInt32LE(4)).toBe(1);
    expect(b.readUInt32LE(8)).toBe(3);
    expect(b.readInt32LE(12)).toBe(13);
    expect(b.readUInt32LE(16)).toBe(2);
    expect(b.readUInt32LE(20)).toBe(1);
    expect([...b.subarray(24, 30)]).toEqual([0, 4, 8, 0, 443 & 0xff, 443 >> 8]);
    expect([...b.subarray(32, 36)]).toEqual([10, 0, 0, 0]);
    expect([...b.subarray(48, 51)]).toEqual([1, 6, 7]);
    expect(b[56]).toBe(0xfc);
    expect(b.readUInt16LE(72)).toBe('/run/a.sock'.length);
    expect(b.subarray(74).toString()).toBe('/run/a.sock');
  });
});

describe('the filter under network rules', () => {
  const rules = (b: PolicyBuilder) => b.allowIPv4('127.0.0.1', 8080);

  it('sends the calls the policy runs to the monitor, and only those', () => {
    const p = rules(
      x64()
        .allowSyscalls(['connect', 'sendto', 'sendmsg', 'listen', 'bind'])
        .blockSyscallWithErrno('sendmmsg', 'EPERM'),
    ).build();
    const prog = compilePolicy(p, { monitor: true }).program;
    const run = (name: string, args: Array<number | bigint> = []) =>
      evaluate(prog, { nr: nr(name), arch: AUDIT_ARCH_X86_64, args });
    expect(run('connect').ret).toBe(NET_NOTIFY);
    expect(run('listen').ret).toBe(NET_NOTIFY);
    expect(run('bind').ret).toBe(NET_NOTIFY);
    expect(run('sendmsg').ret).toBe(NET_NOTIFY);
    expect(run('sendmmsg')).toMatchObject({ action: 'ERRNO', data: 1 });
    expect(run('sendto', [3, 0, 4, 0, 0, 0]).ret).toBe(SECCOMP_RET_ALLOW); // no address: the policy's verdict
    expect(run('sendto', [3, 0, 4, 0, 0x7ffc0000n, 16]).ret).toBe(NET_NOTIFY);
    expect(run('sendto', [3, 0, 4, 0, 0x7f0000000000n, 16]).ret).toBe(NET_NOTIFY); // high half only
    expect(run('sendto', [3, 0, 4, MSG_FASTOPEN, 0, 0]).ret).toBe((SECCOMP_RET_ERRNO | 95) >>> 0);
    expect(run('sendmsg', [3, 0, MSG_FASTOPEN | 0x40n]).ret).toBe((SECCOMP_RET_ERRNO | 95) >>> 0);
    expect(networkDecidedBits(p)).toBe(
      NET_SYSCALL_BITS.connect |
        NET_SYSCALL_BITS.sendto |
        NET_SYSCALL_BITS.sendmsg |
        NET_SYSCALL_BITS.listen |
        NET_SYSCALL_BITS.bind,
    );
    expect(classify(prog, { nr: nr('connect'), arch: AUDIT_ARCH_X86_64 }).kind).toBe('network');
    // A call the policy does not allow stays a violation, and the monitor is told so.
    const q = rules(x64().allowSyscall('sendto')).build();
    expect(
      evaluate(compilePolicy(q, { monitor: true }).program, { nr: nr('connect'), arch: AUDIT_ARCH_X86_64 }).data,
    ).toBe(NOTIFY_DATA.SYSCALL_VIOLATION);
    expect(networkDecidedBits(q)).toBe(NET_SYSCALL_BITS.sendto);
    // Without a monitor nothing can decide: EACCES.
    expect(evaluate(compilePolicy(p).program, { nr: nr('connect'), arch: AUDIT_ARCH_X86_64 })).toMatchObject({
      action: 'ERRNO',
      data: 13,
    });
  });

  it('the same syscall rules compile differently with and without network rules (cache key)', () => {
    const a = x64().allowSyscall('connect').build();
    const b = rules(x64().allowSyscall('connect')).build();
    expect(a.key).toBe(b.key);
    expect(
      evaluate(compilePolicy(a, { monitor: true }).program, { nr: nr('connect'), arch: AUDIT_ARCH_X86_64 }).action,
    ).toBe('ALLOW');
    expect(
      evaluate(compilePolicy(b, { monitor: true }).program, { nr: nr('connect'), arch: AUDIT_ARCH_X86_64 }).ret,
    ).toBe(NET_NOTIFY);
  });

  it('refuses an argument rule on a network call (the monitor could not tell its verdicts apart)', () => {
    const p = rules(x64().addPolicyOnSyscall('connect', [ARG_32(0), JEQ(3, 'ok'), KILL, LABEL('ok'), ALLOW])).build();
    expect(() => compilePolicy(p, { monitor: true })).toThrow(/must allow or deny connect as a whole/);
  });

  it('the model agrees with the program on every syscall number and the address/flags cases', () => {
    const policies = [
      rules(x64().allowNetworkClient().allowSyscalls(['listen', 'read', 'write'])).build(),
      rules(x64().defaultAction('allow')).build(),
      rules(x64().defaultAction('log').blockSyscallWithErrno('connect', 'EPERM')).build(),
      rules(x64().allowNodeRuntime()).build(),
    ];
    const argSets: bigint[][] = [
      [0n, 0n, 0n, 0n, 0n, 0n],
      [3n, 0x1000n, 16n, 0n, 0x2000n, 16n],
      [3n, 0x1000n, 16n, 0n, 0x100000000n, 16n],
      [3n, 0x1000n, MSG_FASTOPEN, MSG_FASTOPEN, 0n, 0n],
      [1020n, 0x1000n, 0n, 0n, 0n, 0n],
    ];
    for (const p of policies) {
      for (const options of [
        { monitor: true },
        { monitor: false },
        { monitor: true, execPrologue: false, clientChannelFd: 1020 },
      ]) {
        const prog = compilePolicy(p, options).program;
        for (const n of SYSCALL_TABLES.x86_64.byNumber.keys()) {
          for (const args of argSets) {
            const data = { nr: n, arch: AUDIT_ARCH_X86_64, args };
            expect(evaluate(prog, data).ret, `nr ${n} ${args}`).toBe(modelVerdict(p, data, options).ret);
          }
        }
      }
    }
  });
});
