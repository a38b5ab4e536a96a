/**
 * Network rules: CIDR text -> canonical NetworkRule (allowIPv4/allowIPv6, denyIPv4/denyIPv6,
 * allowDns), validation of the network part of a policy file, the reference decision function
 * (decideNetwork: what the monitor decides, written once more in TypeScript for tests and
 * explanations), and the binary rule table the native monitor decides from (encodeNetworkTable).
 *
 * Precedence: a 'dns' exception (port 53 to a named resolver) wins over everything; then any
 * 'deny' rule; then any allow rule; nothing matching is denied.
 */
import { isIPv4, isIPv6 } from 'node:net';
import { posix } from 'node:path';
import { ALLOW, ARG_32, ERRNO, JEQ, LABEL } from './bpf.js';
import type { BpfInsn } from './bpf.js';

/**
 * One network rule: a destination network and port (0 = any port). `action` absent means allow;
 * 'deny' wins over every allow; 'dns' (allowDns: port 53 to one resolver) wins over deny.
 */
export interface NetworkRule {
  readonly family: 4 | 6;
  /** Canonical address of the network (host bits cleared). */
  readonly address: string;
  readonly prefix: number;
  readonly port: number;
  readonly action?: 'deny' | 'dns';
}
/** What a denied destination gets: a network violation (the default), or an errno for the call. */
export type NetworkDenyAction = 'violation' | { readonly errno: number };
/**
 * 'none': a fresh network namespace with only lo (default). 'unrestricted': the host network.
 * 'rules': the sandbox keeps its own namespace; connect(), and sends that carry an address, go to
 * the monitor, which connects allowed destinations from the executor's namespace
 * (docs/policy-guide.md, "Network rules"). Fields other than mode and rules appear only when set.
 */
export interface NetworkPolicy {
  readonly mode: 'none' | 'unrestricted' | 'rules';
  readonly rules: readonly NetworkRule[];
  /** Absolute socket paths (as the sandboxee sees them) connect() may reach in 'rules' mode. */
  readonly unixSockets?: readonly string[];
  /** Default 'violation'. */
  readonly onDeny?: NetworkDenyAction;
}

function parseV4(s: string): number[] | null {
  if (!isIPv4(s)) return null;
  return s.split('.').map(Number);
}

/** Expands an IPv6 address (including an embedded IPv4 tail) into 16 bytes. */
function parseV6(s: string): number[] | null {
  if (!isIPv6(s) || s.includes('%')) return null;
  let text = s;
  const tail: number[] = [];
  const lastColon = text.lastIndexOf(':');
  const maybeV4 = text.slice(lastColon + 1);
  if (maybeV4.includes('.')) {
    const v4 = parseV4(maybeV4);
    if (!v4) return null;
    tail.push(...v4);
    text = `${text.slice(0, lastColon + 1)}0:0`;
  }
  const [head, rest] = text.split('::') as [string, string | undefined];
  const groups = (p: string): number[] => (p ? p.split(':').map((g) => parseInt(g, 16)) : []);
  const h = groups(head);
  const r = rest === undefined ? [] : groups(rest);
  const fill = 8 - h.length - r.length;
  const all = rest === undefined ? h : [...h, ...new Array<number>(fill).fill(0), ...r];
  if (all.length !== 8) return null;
  const bytes = all.flatMap((g) => [g >> 8, g & 0xff]);
  if (tail.length) bytes.splice(12, 4, ...tail);
  return bytes;
}

function formatV6(b: readonly number[]): string {
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((b[i]! << 8) | b[i + 1]!);
  // Longest run of zero groups (length >= 2) becomes "::" (RFC 5952).
  let best = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}

function mask(bytes: readonly number[], prefix: number): number[] {
  return bytes.map((b, i) => {
    const bits = Math.max(0, Math.min(8, prefix - i * 8));
    return b & ((0xff << (8 - bits)) & 0xff);
  });
}

/** The bytes of an address in canonical text form (4 or 16). */
export function addressBytes(family: 4 | 6, address: string): number[] | null {
  return family === 4 ? parseV4(address) : parseV6(address);
}

/**
 * Splits "10.0.0.0/8", "10.0.0.0/8:443", "::1", "[2001:db8::/32]:443" into the address part and
 * the port text ('' without a port); the port is not checked here.
 */
export function splitCidrPort(v: string): [cidr: string, port: string] {
  const bracket = /^\[([^\]]+)\](?::(\d+))?$/.exec(v);
  if (bracket) return [bracket[1]!, bracket[2] ?? ''];
  // One colon: IPv4 with a port. More: an IPv6 address without one (brackets give it a port).
  if (v.includes(':') && v.indexOf(':') === v.lastIndexOf(':'))
    return [v.slice(0, v.indexOf(':')), v.slice(v.indexOf(':') + 1)];
  return [v, ''];
}

/** Parses a single IP address (no prefix): family and canonical text, or null. */
export function parseIpAddress(text: string): { family: 4 | 6; address: string } | null {
  const v4 = parseV4(text);
  if (v4) return { family: 4, address: v4.join('.') };
  const v6 = parseV6(text);
  if (v6) return { family: 6, address: formatV6(v6) };
  return null;
}

/**
 * Parses "a.b.c.d[/n]" (family 4) or "x::y[/n]" (family 6) and a port (0 = any).
 * Returns the rule, or a problem sentence. Host bits set under the prefix are a problem (a typo
 * such as 10.0.0.1/8 usually means something else than 10.0.0.0/8). `method` names the caller in
 * the problem text (default allowIPv4/allowIPv6).
 */
export function parseNetworkRule(
  family: 4 | 6,
  cidr: string,
  port: number,
  action?: 'deny',
  method?: string,
): NetworkRule | string {
  const what = `${method ?? `${action === 'deny' ? 'deny' : 'allow'}IPv${family}`}("${cidr}"${port ? `, ${port}` : ''})`;
  if (!Number.isInteger(port) || port < 0 || port > 65535) return `${what}: port must be 0..65535 (0 = any port)`;
  const slash = cidr.indexOf('/');
  const addrText = slash < 0 ? cidr : cidr.slice(0, slash);
  const max = family === 4 ? 32 : 128;
  let prefix = max;
  if (slash >= 0) {
    const p = cidr.slice(slash + 1);
    if (!/^\d{1,3}$/.test(p) || Number(p) > max) return `${what}: the prefix length must be 0..${max}`;
    prefix = Number(p);
  }
  const bytes = family === 4 ? parseV4(addrText) : parseV6(addrText);
  if (!bytes) return `${what}: "${addrText}" is not an IPv${family} address`;
  const net = mask(bytes, prefix);
  if (net.some((b, i) => b !== bytes[i])) {
    const canon = family === 4 ? net.join('.') : formatV6(net);
    return `${what}: host bits are set; the network is ${canon}/${prefix}`;
  }
  // An IPv4-mapped network (::ffff:a.b.c.d/96+) is an IPv4 one: such destinations are decided as IPv4.
  if (family === 6 && prefix >= 96 && net.slice(0, 10).every((b) => b === 0) && net[10] === 0xff && net[11] === 0xff) {
    const rule4: NetworkRule = { family: 4, address: net.slice(12).join('.'), prefix: prefix - 96, port };
    return action ? { ...rule4, action } : rule4;
  }
  const rule: NetworkRule = { family, address: family === 4 ? net.join('.') : formatV6(net), prefix, port };
  return action ? { ...rule, action } : rule;
}

/** The DNS exception for one resolver: port 53 (UDP and TCP) to exactly that address. */
export function dnsRule(resolver: string): NetworkRule | string {
  const ip = typeof resolver === 'string' ? parseIpAddress(resolver) : null;
  if (!ip)
    return `allowDns: "${String(resolver)}" is not an IP address (name resolvers by address: a name would need a resolver itself)`;
  return { family: ip.family, address: ip.address, prefix: ip.family === 4 ? 32 : 128, port: 53, action: 'dns' };
}

/** A unix socket path allowUnixSocket() accepts: absolute, canonical, no NUL, fits sun_path. */
export function checkUnixSocketPath(path: string): string | null {
  const what = `allowUnixSocket("${path}")`;
  if (path.includes('\0'))
    return `${what}: the path contains a NUL byte (abstract sockets cannot be allowed: they live in the sandbox's own network namespace)`;
  if (!path.startsWith('/')) return `${what}: the path must be absolute`;
  if (posix.normalize(path) !== path || (path.length > 1 && path.endsWith('/')))
    return `${what}: the path is not canonical (write "${posix.normalize(path).replace(/(.)\/$/, '$1')}")`;
  if (Buffer.byteLength(path) > 107) return `${what}: the path is longer than 107 bytes (sun_path)`;
  return null;
}

/** "deny 10.0.0.0/8", "allow 127.0.0.1/32 port 443", "dns 8.8.8.8 port 53". */
export function formatNetworkRule(r: NetworkRule): string {
  const net = r.action === 'dns' ? r.address : `${r.address}/${r.prefix}`;
  return `${r.action ?? 'allow'} ${net}${r.port ? ` port ${r.port}` : ''}`;
}

/** One member of a policy file's `network.rules` (at: where it is, for the problem): the rule, or its problem. */
function parseNetworkRuleObject(r: Record<string, unknown>, at: string): NetworkRule | string {
  if (!r || typeof r !== 'object') return `${at} must be an object { family, address, prefix, port }`;
  const { family, address, prefix, port, action } = r;
  if (family !== 4 && family !== 6) return `${at}.family must be 4 or 6`;
  if (typeof address !== 'string' || typeof prefix !== 'number' || typeof port !== 'number') {
    return `${at} needs address (string), prefix (number) and port (number)`;
  }
  if (action !== undefined && action !== 'deny' && action !== 'dns')
    return `${at}.action must be "deny" or "dns" when present`;
  const parsed = parseNetworkRule(family, `${address}/${prefix}`, port, action === 'deny' ? 'deny' : undefined, at);
  if (typeof parsed === 'string') return parsed;
  if (action === 'dns' && (port !== 53 || prefix !== (family === 4 ? 32 : 128)))
    return `${at}: a dns rule is one address (/${family === 4 ? 32 : 128}) and port 53`;
  return action === 'dns' ? { ...parsed, action: 'dns' } : parsed;
}

/** Validates the `network` member of a policy file (Policy.fromJSON); problems are appended. */
export function parseNetworkPolicy(v: unknown, problems: string[]): NetworkPolicy {
  if (v === undefined || v === null) return { mode: 'none', rules: [] };
  const o = v as Record<string, unknown>;
  if (typeof v !== 'object' || Array.isArray(v)) {
    problems.push('network must be an object { mode, rules }');
    return { mode: 'none', rules: [] };
  }
  const mode = o['mode'];
  if (mode !== 'none' && mode !== 'unrestricted' && mode !== 'rules')
    problems.push(`network.mode must be "none", "unrestricted" or "rules", got ${JSON.stringify(mode)}`);
  const rules: NetworkRule[] = [];
  if (!Array.isArray(o['rules'])) problems.push('network.rules must be an array');
  else {
    (o['rules'] as Array<Record<string, unknown>>).forEach((r, i) => {
      const rule = parseNetworkRuleObject(r, `network.rules[${i}]`);
      if (typeof rule === 'string') problems.push(rule);
      else rules.push(rule);
    });
  }
  const out: { mode: NetworkPolicy['mode']; rules: NetworkRule[]; unixSockets?: string[]; onDeny?: NetworkDenyAction } =
    {
      mode: mode === 'unrestricted' || mode === 'rules' ? mode : 'none',
      rules,
    };
  if (o['unixSockets'] !== undefined) {
    const u = o['unixSockets'];
    if (!Array.isArray(u) || u.some((p) => typeof p !== 'string'))
      problems.push('network.unixSockets must be an array of paths');
    else {
      for (const p of u as string[]) {
        const bad = checkUnixSocketPath(p);
        if (bad) problems.push(`network.unixSockets: ${bad}`);
      }
      out.unixSockets = [...(u as string[])];
    }
  }
  if (o['onDeny'] !== undefined) {
    const d = o['onDeny'] as { errno?: unknown } | string;
    if (d === 'violation') out.onDeny = 'violation';
    else if (
      d &&
      typeof d === 'object' &&
      typeof d.errno === 'number' &&
      Number.isInteger(d.errno) &&
      d.errno >= 1 &&
      d.errno <= 4095
    )
      out.onDeny = { errno: d.errno };
    else problems.push(`network.onDeny must be "violation" or { errno: 1..4095 }, got ${JSON.stringify(d)}`);
  }
  if (out.mode !== 'rules' && (rules.length || out.unixSockets?.length))
    problems.push(`network.mode is "${out.mode}" but rules are listed (rules need mode "rules")`);
  return out;
}

// ---- decisions ----

/** A destination as the monitor sees it after normalization. */
export interface NetworkDestination {
  readonly family: 4 | 6;
  /** 4 or 16 bytes. */
  readonly bytes: readonly number[];
  readonly port: number;
  /** 'tcp' or 'udp' (rules apply to both; kept for reports). */
  readonly protocol?: 'tcp' | 'udp';
}

export interface NetworkDecision {
  readonly allowed: boolean;
  /** Index of the deciding rule in policy.rules; -1 when no rule matched (denied). */
  readonly rule: number;
}

/**
 * The destination the kernel will really use: IPv4-mapped IPv6 (::ffff:a.b.c.d) is IPv4, and the
 * unspecified address (0.0.0.0, ::) means the local host (127.0.0.1, ::1), as connect() treats it.
 */
export function normalizeDestination(d: NetworkDestination): NetworkDestination {
  let { family, bytes } = d;
  if (family === 6 && bytes.slice(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff) {
    family = 4;
    bytes = bytes.slice(12);
  }
  if (bytes.every((b) => b === 0)) bytes = family === 4 ? [127, 0, 0, 1] : [...new Array<number>(15).fill(0), 1];
  return { ...d, family, bytes };
}

function matches(r: NetworkRule, d: NetworkDestination): boolean {
  if (r.family !== d.family || (r.port !== 0 && r.port !== d.port)) return false;
  const net = addressBytes(r.family, r.address);
  if (!net) return false;
  const m = mask(d.bytes, r.prefix);
  return m.every((b, i) => b === net[i]);
}

/** What the monitor decides for a destination (the same precedence as native/addon/netproxy.cc). */
export function decideNetwork(network: NetworkPolicy, dest: NetworkDestination): NetworkDecision {
  const d = normalizeDestination(dest);
  const find = (pred: (r: NetworkRule) => boolean): number => network.rules.findIndex((r) => pred(r) && matches(r, d));
  const dns = find((r) => r.action === 'dns');
  if (dns >= 0) return { allowed: true, rule: dns };
  const deny = find((r) => r.action === 'deny');
  if (deny >= 0) return { allowed: false, rule: deny };
  const allow = find((r) => r.action === undefined);
  return { allowed: allow >= 0, rule: allow };
}

// ---- the monitor's table ----

/** Layout of the table (little-endian), mirrored by native/addon/netproxy.cc. */
export const NET_TABLE_MAGIC = 0x4e584253; // "SBXN"
export const NET_TABLE_VERSION = 1;
export const NET_RULE_SIZE = 24;
/** Bits of the syscalls whose allowed calls the monitor decides (the compiler's network leaves). */
export const NET_SYSCALL_BITS = Object.freeze({
  connect: 1,
  sendto: 2,
  sendmsg: 4,
  sendmmsg: 8,
  listen: 16,
  bind: 32,
  /** Not a call: the policy lets the sandboxee exec, so injected sockets keep the close-on-exec flag of the fd they replace. */
  execAllowed: 0x80000000,
});
const ACTION_CODE = { allow: 0, deny: 1, dns: 2 } as const;

/**
 * The binary rule table handed to the monitor with the sandbox's listener:
 *   u32 magic, u32 version, u32 syscall bits (NET_SYSCALL_BITS), i32 deny errno (0: violation),
 *   u32 rule count, u32 unix path count,
 *   rules: u8 action (0 allow, 1 deny, 2 dns), u8 family (4|6), u8 prefix, u8 protocol (0 any),
 *          u16 port (0 any), u16 0, u8 address[16],
 *   unix paths: u16 length, bytes.
 */
export function encodeNetworkTable(network: NetworkPolicy, syscallBits: number): Buffer {
  const unix = (network.unixSockets ?? []).map((p) => Buffer.from(p, 'utf8'));
  const size = 24 + network.rules.length * NET_RULE_SIZE + unix.reduce((n, b) => n + 2 + b.length, 0);
  const buf = Buffer.alloc(size);
  buf.writeUInt32LE(NET_TABLE_MAGIC, 0);
  buf.writeUInt32LE(NET_TABLE_VERSION, 4);
  buf.writeUInt32LE(syscallBits >>> 0, 8);
  const onDeny = network.onDeny;
  buf.writeInt32LE(onDeny && onDeny !== 'violation' ? onDeny.errno : 0, 12);
  buf.writeUInt32LE(network.rules.length, 16);
  buf.writeUInt32LE(unix.length, 20);
  let off = 24;
  for (const r of network.rules) {
    const bytes = addressBytes(r.family, r.address);
    if (!bytes) throw new Error(`encodeNetworkTable: bad address ${r.address}`);
    buf.writeUInt8(ACTION_CODE[r.action ?? 'allow'], off);
    buf.writeUInt8(r.family, off + 1);
    buf.writeUInt8(r.prefix, off + 2);
    buf.writeUInt8(0, off + 3);
    buf.writeUInt16LE(r.port, off + 4);
    Buffer.from(bytes).copy(buf, off + 8);
    off += NET_RULE_SIZE;
  }
  for (const b of unix) {
    buf.writeUInt16LE(b.length, off);
    b.copy(buf, off + 2);
    off += 2 + b.length;
  }
  return buf;
}

// ---- allowNetworkClient() ----

/**
 * What a network client calls once it has a socket: connect and the socket I/O calls, options,
 * names, shutdown, and waiting for readiness. Under network rules connect, sendto with an address,
 * sendmsg and sendmmsg go to the monitor (compiler.ts networkSyscalls). No bind, no listen, no
 * accept: a client does not serve.
 */
export const NETWORK_CLIENT_SYSCALLS = [
  'connect',
  'getsockopt',
  'setsockopt',
  'getsockname',
  'getpeername',
  'sendto',
  'recvfrom',
  'sendmsg',
  'recvmsg',
  'sendmmsg',
  'recvmmsg',
  'shutdown',
  'poll',
  'ppoll',
  'select',
  'pselect6',
] as const;

const AF_UNIX = 1;
const AF_INET = 2;
const AF_INET6 = 10;
const EAFNOSUPPORT = 97;

/** socket(domain, ...): AF_UNIX, AF_INET and AF_INET6; other families fail with EAFNOSUPPORT. */
export function socketDomainRule(): BpfInsn[] {
  return [
    ARG_32(0),
    JEQ(AF_UNIX, 'ok'),
    JEQ(AF_INET, 'ok'),
    JEQ(AF_INET6, 'ok'),
    ERRNO(EAFNOSUPPORT),
    LABEL('ok'),
    ALLOW,
  ];
}
