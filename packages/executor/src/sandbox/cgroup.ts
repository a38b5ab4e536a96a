// cgroup.ts: a fresh cgroup v2 per sandbox, where this process may create one (it runs in a
// writable, delegated subtree, e.g. as root or under systemd's Delegate=yes). The sandbox is
// cloned straight into it (CLONE_INTO_CGROUP), and when it ends, cgroup.kill ends anything left
// before the directory is removed. Always fresh: on this kernel, a cgroup that once had
// cgroup.kill written SIGKILLs whatever is cloned into it later.
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

let base: string | null | undefined;
let counter = 0;

/** The cgroup v2 directory this process runs in, or null when there is no cgroup2 mount. */
export function ownCgroupDir(): string | null {
  try {
    const mount = readFileSync('/proc/self/mountinfo', 'utf8')
      .split('\n')
      .find((l) => l.includes(' - cgroup2 '))
      ?.split(' ')[4];
    const own = readFileSync('/proc/self/cgroup', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('0::'))
      ?.slice(3);
    return mount && own !== undefined ? join(mount, own) : null;
  } catch {
    return null;
  }
}

/** Where sandbox cgroups can be created (probed once), or null. */
export function delegatedCgroupBase(): string | null {
  if (base !== undefined) return base;
  base = null;
  const dir = ownCgroupDir();
  if (!dir) return base;
  const probe = join(dir, `sbx-probe-${process.pid}`);
  try {
    mkdirSync(probe);
    rmdirSync(probe);
    base = dir;
  } catch {
    base = null;
  }
  if (base) removeStale(base);
  return base;
}

/** Removes the empty cgroups that executors which died (SIGKILL) left behind: sbx-<pid>-<n> whose
 *  pid is gone. rmdir only succeeds on an empty cgroup, so nothing alive is touched. */
function removeStale(dir: string): void {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return;
  }
  for (const name of names) {
    const m = /^sbx-(\d+)-p?\d+$/.exec(name); // p: a spawn-pool slot's (native/forkserver/pool.h)
    if (!m || Number(m[1]) === process.pid || existsSync(`/proc/${m[1]}`)) continue;
    try {
      rmdirSync(join(dir, name));
    } catch {
      // still populated, or not ours: leave it
    }
  }
}

/** A request's cgroup that a spawn-pool slot did not need (it brought its own): never populated,
 *  nothing written to it, so the next request takes it instead of making one. */
let kept: SandboxCgroup | null = null;

export class SandboxCgroup {
  /** Something was written into it (memory.max): it is never kept for another sandbox. */
  private written = false;
  private constructor(readonly path: string) {}

  /** A new, empty cgroup for one sandbox, or null when none can be created here. */
  static create(): SandboxCgroup | null {
    if (kept) {
      const c = kept;
      kept = null;
      if (existsSync(c.path)) return c;
    }
    const dir = delegatedCgroupBase();
    if (!dir) return null;
    const path = join(dir, `sbx-${process.pid}-${++counter}`);
    try {
      mkdirSync(path);
      return new SandboxCgroup(path);
    } catch {
      return null;
    }
  }

  /** The sandbox runs in `path` instead (a spawn-pool slot's own cgroup, made by the forkserver
   *  under the same parent): this one, still empty, is removed. */
  replacedBy(path: string): SandboxCgroup {
    if (!this.written && kept === null)
      kept = this; // no process was ever in it
    else
      try {
        rmdirSync(this.path);
      } catch {
        // not there any more
      }
    return new SandboxCgroup(path);
  }

  /** @internal (tests) The path of the cgroup kept for the next request, if any. */
  static keptPath(): string | null {
    return kept?.path ?? null;
  }

  /**
   * memory.max, where the memory controller is enabled for this cgroup (its parent delegates it):
   * then every page the sandbox makes the kernel hold (anonymous memory, memfd and tmpfs files,
   * page cache, kernel memory) counts, which RLIMIT_AS alone does not bound. false: no controller.
   */
  limitMemory(bytes: bigint): boolean {
    this.written = true;
    try {
      writeFileSync(join(this.path, 'memory.max'), String(bytes));
      return true;
    } catch {
      return false;
    }
  }

  /** SIGKILLs every process in it (none may escape by double fork or setsid). */
  kill(): void {
    try {
      writeFileSync(join(this.path, 'cgroup.kill'), '1');
    } catch {
      // already removed
    }
  }

  /** Kills what is left and removes the directory: cgroup.kill, then rmdir, retried while it is
   *  EBUSY (the kernel is still reaping the killed processes), for at most about 2 s. */
  async remove(): Promise<void> {
    this.kill();
    for (let i = 0; i < 400; i++) {
      try {
        rmdirSync(this.path);
        return;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EBUSY') return; // gone already, or not ours to remove
      }
      await new Promise((r) => setTimeout(r, i < 20 ? 1 : 5));
    }
  }
}
