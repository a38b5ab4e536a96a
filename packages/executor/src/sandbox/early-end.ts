// early-end.ts: when a sandbox's Result may be given at its init's report instead of at the
// forkserver's EXITED. The sandbox's init sends the target's wait status only after it has
// SIGKILLed and reaped every other process of the tree: the pid namespace's (native/forkserver/
// init.c) every process of the namespace, landlock isolation's subreaper (reaper.c) every
// descendant, orphans included. From then on nothing of the sandboxee runs, and what is left is
// init's own exit (the namespaces torn down, the forkserver's wait4, EXITED), about 1 ms on the
// request path that no Result field needs when the facts below hold. The uid lease is released
// with the Result (the exiting init runs no sandboxee code); the cgroup once EXITED has come
// (rmdir needs it empty).

/** What the Sandbox knows when the init's report arrives (and again once the monitor closed). */
export interface EarlyEndFacts {
  /** The filter went on before exec (no sandbox-me-here handshake still served). */
  beforeExec: boolean;
  /** The init's report of the target's raw wait status. */
  targetStatus: number | null;
  /** The cgroup's counters could be read and the init sent the tree's rusage (the usage then
   *  needs nothing of EXITED's). */
  haveUsage: boolean;
  /** Anything that makes the Result depend on how the tree ended, or on EXITED's flags. */
  violation: boolean;
  setupError: boolean;
  killed: boolean;
  timedOut: boolean;
  hookFailure: boolean;
  learning: boolean;
}

/**
 * True when the Result can be given now: the sandbox's init reported that the target
 * exited on its own (not by a signal: no kill, violation, walltime or OOM can have ended it),
 * nothing on this side says otherwise, and the usage is known (the cgroup's counters, and the
 * init's rusage of the tree it reaped for the peak memory). Anything else waits
 * for EXITED as before.
 */
export function canEndEarly(f: EarlyEndFacts): boolean {
  if (!f.beforeExec || f.learning) return false;
  if (f.targetStatus === null || (f.targetStatus & 0x7f) !== 0) return false; // signaled, or none
  if (!f.haveUsage) return false;
  return !(f.violation || f.setupError || f.killed || f.timedOut || f.hookFailure);
}
