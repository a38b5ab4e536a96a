// forkserver-gone.ts: whether a sandboxed module's forkserver has died, asked when a call failed
// in a way its death would explain. The handle learns of the death only when the executor has
// reaped the forkserver's sandbox, which can come after a child's end: the children are in the
// forkserver's pid namespace, and the kernel kills them while its init is still exiting. So the
// init itself is asked too (/proc/<pid>/stat): gone, a zombie, or exiting (PF_EXITING).
import { readFileSync } from 'node:fs';
import type { ForkServerHandle } from '@sbx/executor';

/** The kernel's "task is exiting" bit in /proc/<pid>/stat's flags field. */
const PF_EXITING = 0x4;

export function forkServerGone(server: ForkServerHandle): boolean {
  if (!server.alive) return true;
  let stat: string;
  try {
    stat = readFileSync(`/proc/${server.pid}/stat`, 'latin1');
  } catch {
    return true; // reaped
  }
  // "pid (comm) state ppid pgrp session tty_nr tpgid flags ...": comm may hold spaces and ')'
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const state = fields[0];
  const flags = Number(fields[6]);
  return state === 'Z' || state === 'X' || (Number.isFinite(flags) && (flags & PF_EXITING) !== 0);
}
