// cgroup-limits.ts: limits.memory and limits.pids, written into the sandbox's own cgroup v2
// before anything runs in it. cgroup v2 only: a controller is usable for sandbox cgroups when
// the cgroup this process runs in lists it in cgroup.subtree_control (a delegated subtree, e.g.
// systemd's Delegate=memory pids). cgroup v1 hierarchies are not used: a v1 cgroup cannot be
// cloned into (CLONE_INTO_CGROUP), and moving the sandbox in afterwards would race its forks.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { delegatedCgroupBase, ownCgroupDir } from './cgroup.js';
import type { Limits } from './limits.js';

export type LimitController = 'memory' | 'pids';

/** Controllers a sandbox cgroup would have here (empty when no sandbox cgroup can be made). */
export function sandboxControllers(): { base: string | null; enabled: LimitController[]; available: string[] } {
  const base = delegatedCgroupBase();
  const dir = (base ?? ownCgroupDir())?.replace(/\/+$/, '') ?? null;
  const read = (f: string) => {
    try {
      return dir ? readFileSync(join(dir, f), 'utf8').trim().split(/\s+/).filter(Boolean) : [];
    } catch {
      return [];
    }
  };
  const subtree = read('cgroup.subtree_control');
  const enabled = (['memory', 'pids'] as const).filter((c) => base !== null && subtree.includes(c));
  return { base: dir && base ? dir : null, enabled, available: read('cgroup.controllers') };
}

/** What is missing for `limits`' cgroup limits here, as one sentence; null when nothing is. */
export function missingForLimits(limits: Limits, haveCgroup: boolean): string | null {
  const wanted = (['memory', 'pids'] as const).filter((c) => limits[c] !== null);
  if (wanted.length === 0) return null;
  const names = wanted.map((c) => `limits.${c}`).join(' and ');
  if (!haveCgroup) {
    return `${names} need a cgroup v2 of the sandbox's own, and none can be created here (no writable, delegated cgroup v2 subtree, or cgroup: 'off'): run where one is delegated (systemd-run --user -p Delegate=yes, or as root on a cgroup v2 host), or use rlimits instead; see sbx doctor`;
  }
  const c = sandboxControllers();
  const missing = wanted.filter((w) => !c.enabled.includes(w));
  if (missing.length === 0) return null;
  return `${missing.map((m) => `limits.${m}`).join(' and ')} need the cgroup v2 ${missing.join(' and ')} controller${missing.length > 1 ? 's' : ''}, which ${c.base}/cgroup.subtree_control does not enable (enabled: ${c.enabled.join(', ') || 'none'}; this cgroup offers: ${c.available.join(', ') || 'none'}): delegate ${missing.join(' and ')} to this process's cgroup (systemd: Delegate=${missing.join(' ')}; or write +${missing[0]} to cgroup.subtree_control of a parent without processes of its own), or drop ${missing.map((m) => `limits.${m}`).join(' and ')}; see sbx doctor`;
}

/** Writes the limits into the sandbox's (still empty) cgroup. Throws with the file that failed. */
export function applyCgroupLimits(dir: string, limits: Limits): void {
  const write = (file: string, value: string, optional = false) => {
    try {
      writeFileSync(join(dir, file), value);
    } catch (err) {
      if (optional) return;
      throw new Error(`cgroup limits: writing ${value} to ${join(dir, file)}: ${(err as Error).message}`);
    }
  };
  if (limits.memory !== null) {
    write('memory.max', String(limits.memory));
    // No swap, or the limit only moves memory to swap; and an OOM ends the sandbox as a whole.
    write('memory.swap.max', '0', true);
    write('memory.oom.group', '1', true);
  }
  if (limits.pids !== null) write('pids.max', String(limits.pids));
}

/** Whether the kernel's OOM killer acted in the sandbox's cgroup (memory.events oom_kill > 0). */
export function oomKilled(dir: string): boolean {
  try {
    return /^oom_kill ([1-9]\d*)$/m.test(readFileSync(join(dir, 'memory.events'), 'utf8'));
  } catch {
    return false;
  }
}
