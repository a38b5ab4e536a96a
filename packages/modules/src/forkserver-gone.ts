// forkserver-gone.ts: whether a sandboxed module's forkserver has died. The handle learns of the
// death only once the executor has reaped the forkserver's sandbox, which can come after a
// child's end: the children are in the forkserver's pid namespace, and the kernel kills them
// while its init is still exiting. So the init itself is asked too, through its
// /proc/<pid>/stat opened once (one pread per question; a reaped pid reads as ESRCH, never as
// another process that got the number): gone, a zombie, or exiting (PF_EXITING).
import { closeSync, openSync, readSync } from 'node:fs';
import type { ForkServerHandle } from '@sbx/executor';

/** The kernel's "task is exiting" bit in /proc/<pid>/stat's flags field. */
const PF_EXITING = 0x4;

export class ForkServerWatch {
  readonly server: ForkServerHandle;
  #fd: number;
  readonly #buf = Buffer.allocUnsafe(512);

  constructor(server: ForkServerHandle) {
    this.server = server;
    try {
      this.#fd = openSync(`/proc/${server.pid}/stat`, 'r');
    } catch {
      this.#fd = -1; // already gone
    }
  }

  /** True once the forkserver died (or was closed). */
  get gone(): boolean {
    if (!this.server.alive || this.#fd < 0) return true;
    let n: number;
    try {
      n = readSync(this.#fd, this.#buf, 0, this.#buf.length, 0);
    } catch {
      return true; // ESRCH: reaped
    }
    const stat = this.#buf.toString('latin1', 0, n);
    // "pid (comm) state ppid pgrp session tty_nr tpgid flags ...": comm may hold spaces and ')'
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const state = fields[0];
    const flags = Number(fields[6]);
    return state === 'Z' || state === 'X' || (Number.isFinite(flags) && (flags & PF_EXITING) !== 0);
  }

  close(): void {
    if (this.#fd >= 0) closeSync(this.#fd);
    this.#fd = -1;
  }
}
