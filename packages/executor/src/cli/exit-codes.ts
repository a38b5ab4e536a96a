// exit-codes.ts: what `sbx run` exits with. The sandboxee's own code on OK; otherwise these.
export const ExitCode = {
  /** Bad command line (unknown flag, bad value). */
  USAGE: 2,
  /** sbx itself failed (INTERNAL_ERROR, or an exception). */
  INTERNAL: 125,
  /** The sandbox could not be set up (SETUP_ERROR: missing binary, bad mount, host limits). */
  SETUP: 126,
  /** The walltime limit ended the sandbox (TIMEOUT), as timeout(1) does. */
  TIMEOUT: 124,
  /** A policy violation (VIOLATION): 128 + SIGSYS, what a seccomp kill looks like to a shell. */
  VIOLATION: 159,
  /** Killed from outside (EXTERNAL_KILL, e.g. Ctrl-C): 128 + SIGKILL. */
  EXTERNAL_KILL: 137,
  /** SIGNALED: 128 + the signal number. */
  SIGNAL_BASE: 128,
} as const;
