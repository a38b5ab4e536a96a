// setup-channel.ts: step 3 of a sandbox's life, reading the setup socket. Between clone and exec
// the child (and, with a pid namespace or a reaper, the sandbox's init) reports on it
// (native/forkserver/protocol.h): a failed step, the target's pidfd, the fd number its seccomp
// listener will get, and at the end the target's wait status. EOF: every holder is gone.
import { type Comms, CommsError, Tag } from '@sbx/client';
import { closeQuietly, native } from '@sbx/client/internal';
import { monotonicMs } from '../clock.js';
import {
  decodeSetupFailure,
  decodeTrace,
  FsTag,
  SETUP_FAILED_HEADER,
  type SetupFailure,
} from '../forkserver/protocol.js';

/** The rusage a pid namespace's init sends with the status: the whole tree but the init. */
export interface InitRusage {
  utimeUs: number;
  stimeUs: number;
  maxRssKiB: number;
}
/** i32 status, u64 utime_us, u64 stime_us, u64 maxrss_kib. */
const INIT_STATUS_RUSAGE = 4 + 3 * 8;
function initRusage(d: Buffer): InitRusage {
  return {
    utimeUs: Number(d.readBigUInt64LE(4)),
    stimeUs: Number(d.readBigUInt64LE(12)),
    maxRssKiB: Number(d.readBigUInt64LE(20)),
  };
}

/** What the Sandbox does with each report. */
export interface SetupReports {
  /** A setup step failed (the child then exits): which, with its errno. */
  failed(failure: SetupFailure): void;
  /** The target's own pidfd (it runs as pid 2 under the sandbox's init); once. */
  targetPidfd(fd: number): void;
  /** The child's seccomp listener will be its fd `n` (awaited before the next report is read); once. */
  listener(n: number): Promise<void>;
  /** Whether a pidfd / a listener report is still expected (a second one is a protocol error). */
  expects(report: 'targetPidfd' | 'listener'): boolean;
  /** The trace (SETUP_TRACE): the end of each step so far, CLOCK_MONOTONIC ns. */
  trace(entries: { step: number; ns: bigint }[]): void;
  /** The target ended with this raw wait status (sent by the sandbox's init), and the rusage of
   *  every process the init reaped (a pid namespace's init sends it). */
  initStatus(status: number, rusage: InitRusage | null): void;
  /** The channel broke, or carried something it must not: the sandbox must end. */
  broken(reason: string, overrides: boolean): void;
}

/** Reads reports until EOF. Resolves when the channel is closed (it closes it). */
export async function readSetupChannel(setup: Comms, on: SetupReports): Promise<void> {
  try {
    for (;;) {
      const m = await setup.recvAny();
      if (m.tag === FsTag.SetupFailed && m.data.length >= SETUP_FAILED_HEADER) on.failed(decodeSetupFailure(m.data));
      else if (m.tag === FsTag.InitStatus && (m.data.length === 4 || m.data.length === INIT_STATUS_RUSAGE))
        on.initStatus(m.data.readInt32LE(0), m.data.length === 4 ? null : initRusage(m.data));
      else if (m.tag === FsTag.SetupTrace && decodeTrace(m.data)) on.trace(decodeTrace(m.data)!);
      else if (m.tag === Tag.Fd && on.expects('targetPidfd')) on.targetPidfd(m.fd);
      else if (m.tag === Tag.Uint32 && m.data.length === 4 && on.expects('listener'))
        await on.listener(m.data.readUInt32LE(0));
      else {
        if (m.fd >= 0) closeQuietly(m.fd);
        on.broken(`unexpected setup message (tag 0x${m.tag.toString(16)})`, true);
      }
    }
  } catch (err) {
    if (!(err instanceof CommsError && err.code === 'PEER_CLOSED'))
      on.broken(`setup channel: ${(err as Error).message}`, false);
  } finally {
    setup.close();
  }
}

/** Taking the listener failed for a reason the Result should name. */
export class ListenerError extends Error {}

/**
 * Takes the child's seccomp listener (fd `n` in the process of `pidfd`) with pidfd_getfd(). The
 * child sent `n` just before calling seccomp(), so until that returns the fd does not exist
 * (EBADF): retry until it does, or `givenUp()` (the child reported a failure, the channel closed):
 * -1 then. Throws ListenerError when it cannot be taken at all.
 */
export async function takeListener(pidfd: number, n: number, givenUp: () => boolean): Promise<number> {
  const started = monotonicMs();
  const EBADF = 9;
  for (let attempt = 0; ; attempt++) {
    // Most attempts meet EBADF: the non-throwing call keeps each one to the syscall.
    const fd = native().pidfdGetfdOrErrno(pidfd, n);
    if (fd >= 0) return fd;
    if (fd !== -EBADF)
      try {
        return native().pidfdGetfd(pidfd, n); // again, for the error's code and message
      } catch (err) {
        const code = (err as { code?: string }).code;
        if (code !== 'EBADF')
          throw new ListenerError(
            `pidfd_getfd(sandboxee, ${n}) for the seccomp listener: ${(err as Error).message}` +
              (code === 'EPERM' ? ' (the host forbids it: check kernel.yama.ptrace_scope <= 1)' : ''),
          );
      }
    if (givenUp()) return -1;
    if (monotonicMs() - started > 5000)
      throw new ListenerError('the sandboxee did not install its seccomp filter within 5 s');
    await new Promise((r) => (attempt < 100 ? setImmediate(r) : setTimeout(r, 1)));
  }
}
