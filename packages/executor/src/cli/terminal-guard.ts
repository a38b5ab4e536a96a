// terminal-guard.ts: the caller's terminal around a sandbox that had it as stdio. The sandboxee
// may leave it in raw mode or without echo; the always-on denials keep it from changing the line
// discipline or hanging it up, but a terminal can still end up where it cannot be reset (hung up
// by its owner meanwhile, say). Node resets its stdio terminals when it exits and aborts (SIGABRT)
// when that fails, so sbx puts the terminal back right after the run, and when that fails it puts
// /dev/null in the fd's place: Node then skips it and sbx exits with the sandbox's code.
import { native } from '@sbx/client/internal';

export interface TerminalGuard {
  /** Puts back what was saved; the fds it could not put back now hold /dev/null. Returns those fds. */
  restore(): number[];
}

/** Saves the state of the terminals among fds 0-2. */
export function guardTerminal(): TerminalGuard {
  const saved: Array<{ fd: number; termios: Buffer; ldisc: number }> = [];
  for (const fd of [0, 1, 2]) {
    // ttyState fails with ENOTTY on anything but a terminal (no node:tty: loading it loads net
    // and the streams, a tenth of the CLI's start).
    try {
      saved.push({ fd, ...native().ttyState(fd) });
    } catch {
      // Not a terminal, or not resettable to begin with: left to Node, as without sbx.
    }
  }
  return {
    restore() {
      const detached: number[] = [];
      for (const s of saved) {
        if (native().ttyRestore(s.fd, s.termios, s.ldisc) === 0) continue;
        if (native().ttyDetach(s.fd) === 0) detached.push(s.fd);
      }
      return detached;
    },
  };
}
