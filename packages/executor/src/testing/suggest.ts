// suggest.ts: what a violation means for the policy: the builder call and the policy-file entry
// that would allow it, or why none can (sbx's always-on denials, foreign syscall ABIs).
import { ALWAYS_DENIED, type Denial } from '../policy/denials.js';
import type { Violation } from '../sandbox/result.js';

export interface PolicySuggestion {
  /** The PolicyBuilder call that allows what was stopped (".allowSyscall('openat')"), if one can. */
  builder?: string;
  /** The same as a policy-file fragment (sbx run --policy FILE), if one can. */
  policyFile?: string;
  /** Why no line can allow it, or what else to consider. */
  note?: string;
}

/** The always-on denial the violation hit, if any (its condition checked on the low 32 bits). */
function alwaysDenied(v: Violation): Denial | undefined {
  return ALWAYS_DENIED.find((d) => {
    if (d.name !== v.syscall || d.verdict !== 'violation') return false;
    if (!d.when) return true;
    const arg = Number(BigInt.asUintN(32, v.args[d.when.arg] ?? 0n));
    return d.when.test === 'any-bit' ? (arg & d.when.values[0]!) !== 0 : d.when.values.includes(arg);
  });
}

/** "127.0.0.1:80" -> family, CIDR and port; "[::1]:443" likewise; anything else undefined. */
function parseAddress(address: string): { family: 4 | 6; cidr: string; port?: number } | undefined {
  const v6 = /^\[([0-9a-fA-F:.]+)\](?::(\d+))?$/.exec(address);
  if (v6) return { family: 6, cidr: `${v6[1]}/128`, ...(v6[2] ? { port: Number(v6[2]) } : {}) };
  const v4 = /^(\d{1,3}(?:\.\d{1,3}){3})(?::(\d+))?$/.exec(address);
  if (v4) return { family: 4, cidr: `${v4[1]}/32`, ...(v4[2] ? { port: Number(v4[2]) } : {}) };
  return undefined;
}

function networkSuggestion(v: Violation): PolicySuggestion {
  const address = v.address ?? '';
  if (v.rule?.startsWith('denied by'))
    return { note: `the destination is ${v.rule}: a deny rule wins over every allow, remove or narrow it` };
  if (address.startsWith('unix:')) {
    const path = address.slice('unix:'.length);
    return {
      builder: `.allowUnixSocket(${JSON.stringify(path)})`,
      policyFile: `"network": { "mode": "rules", "unix": [${JSON.stringify(path)}] }`,
    };
  }
  const a = parseAddress(address);
  if (!a) return { note: `no allow rule covers ${address || 'this destination'}${v.rule ? ` (${v.rule})` : ''}` };
  const port = a.port !== undefined ? `, ${a.port}` : '';
  const fileEntry =
    a.family === 6
      ? `[${a.cidr}]${a.port !== undefined ? `:${a.port}` : ''}`
      : `${a.cidr}${a.port !== undefined ? `:${a.port}` : ''}`;
  return {
    builder: `.allowIPv${a.family}(${JSON.stringify(a.cidr)}${port})`,
    policyFile: `"network": { "mode": "rules", "allow": [${JSON.stringify(fileEntry)}] }`,
  };
}

/** The policy line that would have allowed the violation, or why there is none. */
export function suggestPolicyLine(v: Violation): PolicySuggestion {
  if (v.kind === 'network') return networkSuggestion(v);
  if (v.kind === 'arch') {
    return {
      note: `a ${v.arch} syscall: sbx denies every syscall ABI but the policy's own (${v.syscall}); build the program for the host architecture`,
    };
  }
  const denial = alwaysDenied(v);
  if (denial) return { note: `${v.syscall} is always denied by sbx here (${denial.why}); no policy line allows it` };
  if (v.nr < 0)
    return {
      note: "the sandboxee was killed by SIGSYS without a monitor (monitor: 'kill'): run with the default monitor to learn the syscall",
    };
  if (v.syscall.startsWith('unknown(')) {
    return {
      builder: `.allowSyscall(${v.nr})`,
      note: `syscall ${v.nr} has no name in the ${v.arch} table: policy files cannot name it`,
    };
  }
  return {
    builder: `.allowSyscall('${v.syscall}')`,
    policyFile: `"allow": ["${v.syscall}"]`,
    note: `or, if the program copes with a failing ${v.syscall}: .blockSyscallWithErrno('${v.syscall}', 'EPERM')`,
  };
}
