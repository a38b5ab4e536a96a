/**
 * Network rule parsing for allowIPv4/allowIPv6: CIDR text -> canonical NetworkRule. Enforcement
 * (the monitor's connect() decisions) is elsewhere; this file only validates and normalizes.
 */
import { isIPv4, isIPv6 } from 'node:net';
import type { NetworkRule } from './policy.js';

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
    text = text.slice(0, lastColon + 1) + '0:0';
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

function formatV6(b: number[]): string {
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

function mask(bytes: number[], prefix: number): number[] {
  return bytes.map((b, i) => {
    const bits = Math.max(0, Math.min(8, prefix - i * 8));
    return b & ((0xff << (8 - bits)) & 0xff);
  });
}

/**
 * Parses "a.b.c.d[/n]" (family 4) or "x::y[/n]" (family 6) and a port (0 = any).
 * Returns the rule, or a problem sentence. Host bits set under the prefix are a problem (a typo
 * such as 10.0.0.1/8 usually means something else than 10.0.0.0/8).
 */
export function parseNetworkRule(family: 4 | 6, cidr: string, port: number): NetworkRule | string {
  const what = `allowIPv${family}("${cidr}"${port ? `, ${port}` : ''})`;
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
  return { family, address: family === 4 ? net.join('.') : formatV6(net), prefix, port };
}
