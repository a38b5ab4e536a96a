// counters.ts: names the per-user kernel counter behind a setup failure. Several errors the kernel
// gives when a count kept per host user has run out say nothing of the counter ("Too many
// references"); the setup message is completed with which one, and whose. Decided by the failed
// step and its errno (data the forkserver reports), never by the message text.
import { constants } from 'node:os';
import { SetupStep, type SetupFailure } from '../forkserver/protocol.js';

const { EAGAIN, ENOSPC } = constants.errno;
/** Too many fds in flight (Linux: 109 on x86_64 and aarch64; Node's errno table lacks it). */
const ETOOMANYREFS = 109;

/** The failure's message with the counter named, when its errno is one of those; else the message. */
export function nameExhaustedCounter(failure: SetupFailure, hostUid: number | null): string {
  const { message, errno, step } = failure;
  const who = hostUid === null ? "the sandbox's host uid" : `host uid ${hostUid}`;
  if (errno === ETOOMANYREFS) {
    return `${message} (fds in flight in unix sockets of ${who} exceed the sender's RLIMIT_NOFILE: a count the kernel keeps per host user, shared by every process of that uid)`;
  }
  // clone by the forkserver, or fork by the sandbox's init for its target
  if (errno === EAGAIN && (step === SetupStep.Clone || step === SetupStep.Init)) {
    return `${message} (processes of ${who} reached RLIMIT_NPROC, or the host's pid or thread limit)`;
  }
  if (errno === ENOSPC && step === SetupStep.Clone) {
    return `${message} (namespaces of ${who}, or of the forkserver's uid, reached /proc/sys/user/max_*_namespaces)`;
  }
  return message;
}
