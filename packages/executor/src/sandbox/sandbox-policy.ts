// sandbox-policy.ts: what a Sandbox takes from a Policy: the mount tree as forkserver entries,
// whether it shares the host network, and the compiled seccomp program.
import { statSync } from 'node:fs';
import type { FsEntry } from '../isolation/mounts.js';
import { compilePolicy, networkDecidedBits } from '../policy/compiler.js';
import { encodeNetworkTable, formatNetworkRule } from '../policy/network.js';
import type { Policy } from '../policy/policy.js';

export interface FilterOptions {
  /** Violations return USER_NOTIF (the monitor reports them) instead of KILL_PROCESS. */
  monitor: boolean;
  /** The fd the target is exec'd from (its magic execveat is the one allowed exec). */
  execFd: number;
}

/**
 * The mount tree. Two paths are special, as in Sandbox2: addDirectory('/proc') is the sandbox's
 * own procfs (its pid namespace), and addDirectory('/dev') is a minimal /dev (null, zero, full,
 * random, urandom), never the host's. A bound character device (addFile('/dev/null')) keeps
 * working: such binds are mounted without nodev.
 */
export function filesystemOf(policy: Policy): FsEntry[] {
  return policy.mounts.map((m): FsEntry => {
    if (m.kind === 'tmpfs') return { type: 'tmpfs', inside: m.inside, sizeBytes: m.sizeBytes };
    if (m.kind === 'dir' && m.outside === '/proc') return { type: 'proc', inside: m.inside };
    if (m.kind === 'dir' && m.outside === '/dev') return { type: 'dev', inside: m.inside };
    return {
      type: 'bind',
      outside: m.outside,
      inside: m.inside,
      writable: m.writable,
      dev: m.kind === 'file' && isCharDevice(m.outside),
    };
  });
}

export function sharesHostNetwork(policy: Policy): boolean {
  return policy.network.mode === 'unrestricted';
}

/** The monitor's rule table for a policy with network rules (mode 'rules'), else undefined. */
export function networkTable(policy: Policy): Buffer | undefined {
  if (policy.network.mode !== 'rules') return undefined;
  return encodeNetworkTable(policy.network, networkDecidedBits(policy));
}

/** Why the monitor denied a destination, in words: the deciding rule, or the reason it gave. */
export function networkDenialReason(policy: Policy, rule: number | undefined, reason: string | undefined): string {
  if (rule !== undefined && rule >= 0) {
    const r = policy.network.rules[rule];
    if (r) return `denied by ${formatNetworkRule(r)}`;
  }
  if (rule === -1) return 'no allow rule matches';
  return reason || 'denied by the network rules';
}

/** The seccomp program of a policy as SECCOMP op bytes, and whether it came from the compile cache. */
export function compileFilter(policy: Policy, options: FilterOptions): { filter: Buffer; cached: boolean } {
  const compiled = compilePolicy(policy, { monitor: options.monitor, execFd: options.execFd });
  const filter = Buffer.from(compiled.program.buffer, compiled.program.byteOffset, compiled.program.byteLength);
  return { filter, cached: compiled.cached };
}

function isCharDevice(path: string): boolean {
  try {
    return statSync(path).isCharacterDevice();
  } catch {
    return false;
  }
}
