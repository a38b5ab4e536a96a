// sandbox-policy.ts: what a Sandbox takes from a Policy: the mount tree as forkserver entries,
// whether it shares the host network, and the compiled seccomp program.
import { statSync } from 'node:fs';
import type { FsEntry } from './mounts.js';
import { compilePolicy } from './policy/compiler.js';
import { Policy } from './policy/policy.js';

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
    return { type: 'bind', outside: m.outside, inside: m.inside, writable: m.writable, dev: m.kind === 'file' && isCharDevice(m.outside) };
  });
}

export function sharesHostNetwork(policy: Policy): boolean {
  return policy.network.mode === 'unrestricted';
}

export function compileFilter(policy: Policy, options: FilterOptions): Buffer {
  const compiled = compilePolicy(policy, { monitor: options.monitor, execFd: options.execFd });
  return Buffer.from(compiled.program.buffer, compiled.program.byteOffset, compiled.program.byteLength);
}

function isCharDevice(path: string): boolean {
  try {
    return statSync(path).isCharacterDevice();
  } catch {
    return false;
  }
}
