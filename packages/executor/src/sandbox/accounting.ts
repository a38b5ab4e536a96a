// accounting.ts: what a sandbox's whole process tree used, for its Result. The sandbox's own
// cgroup counts every process that ever ran in it (cpu.stat is there in every cgroup v2, with
// or without the cpu controller; memory.peak only with the memory controller). Without a
// cgroup, the forkserver's wait4() rusage of the sandbox's init stands in: the init reaps
// (and so sums up) every process of the tree before it exits, killed runs included.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Accounting } from './result.js';

export interface Usage {
  cpuUserMs: number;
  cpuSystemMs: number;
  maxRssKiB: number;
  accounting: Accounting;
}

/** The cgroup has the memory controller on: memory.peak, the whole tree's peak, is there. */
export function hasMemoryPeak(dir: string): boolean {
  return existsSync(join(dir, 'memory.peak'));
}

/** The cgroup's cpu (and peak memory, where the memory controller is on), or null if unreadable. */
export function cgroupUsage(dir: string): { cpuUserMs: number; cpuSystemMs: number; peakKiB: number | null } | null {
  let stat: string;
  try {
    stat = readFileSync(join(dir, 'cpu.stat'), 'utf8');
  } catch {
    return null;
  }
  const field = (name: string) => Number(new RegExp(`^${name} (\\d+)$`, 'm').exec(stat)?.[1] ?? NaN);
  const user = field('user_usec');
  const system = field('system_usec');
  if (!Number.isFinite(user) || !Number.isFinite(system)) return null;
  let peakKiB: number | null = null;
  // Without the memory controller there is no memory.peak: asked first, rather than a thrown ENOENT.
  if (hasMemoryPeak(dir))
    try {
      peakKiB = Math.ceil(Number(readFileSync(join(dir, 'memory.peak'), 'utf8').trim()) / 1024);
      if (!Number.isFinite(peakKiB)) peakKiB = null;
    } catch {
      // removed meanwhile
    }
  return { cpuUserMs: user / 1000, cpuSystemMs: system / 1000, peakKiB };
}

/** Combines the cgroup's figures (preferred) with the init's rusage. */
export function treeUsage(
  cgroup: ReturnType<typeof cgroupUsage>,
  rusage: { utimeUs: number; stimeUs: number; maxRssKiB: number } | null,
): Usage {
  if (cgroup) {
    return {
      cpuUserMs: cgroup.cpuUserMs,
      cpuSystemMs: cgroup.cpuSystemMs,
      maxRssKiB: cgroup.peakKiB ?? rusage?.maxRssKiB ?? 0,
      accounting: 'cgroup',
    };
  }
  if (rusage)
    return {
      cpuUserMs: rusage.utimeUs / 1000,
      cpuSystemMs: rusage.stimeUs / 1000,
      maxRssKiB: rusage.maxRssKiB,
      accounting: 'rusage',
    };
  return { cpuUserMs: 0, cpuSystemMs: 0, maxRssKiB: 0, accounting: 'none' };
}
