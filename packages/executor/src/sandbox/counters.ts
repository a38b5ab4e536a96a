// counters.ts: names the per-user kernel counter behind a setup failure. Several errors the kernel
// gives when a count kept per host user has run out say nothing of the counter ("Too many
// references"); the setup message is completed with which one, and whose.

/** `message` with the counter named, when its error is one of those; else `message` unchanged. */
export function nameExhaustedCounter(message: string, hostUid: number | null): string {
  const who = hostUid === null ? "the sandbox's host uid" : `host uid ${hostUid}`;
  if (/Too many references/.test(message)) {
    return `${message} (fds in flight in unix sockets of ${who} exceed the sender's RLIMIT_NOFILE: a count the kernel keeps per host user, shared by every process of that uid)`;
  }
  if (/\b(fork|clone3?)\(.*Resource temporarily unavailable/.test(message)) {
    return `${message} (processes of ${who} reached RLIMIT_NPROC, or the host's pid or thread limit)`;
  }
  if (/\b(clone3?|unshare)\(.*No space left on device/.test(message)) {
    return `${message} (namespaces of ${who}, or of the forkserver's uid, reached /proc/sys/user/max_*_namespaces)`;
  }
  return message;
}
