// default-policy.ts: the policy `sbx run` uses: what an ordinary dynamically linked command-line
// program needs (startup, reading the files it can see, writing, time, exit, children of its own)
// on a read-only view of the system directories; no network unless --net says so.
import { existsSync, lstatSync } from 'node:fs';
import { PolicyBuilder } from '../policy/policy-builder.js';
import type * as PolicyFileModule from '../policy-file/policy-file.js';
import { PolicyError } from '../policy/errors.js';
import type { Policy } from '../policy/policy.js';

export interface RunPolicyOptions {
  allow: string[];
  errno: Array<[string, string]>;
  mounts: Array<{ outside: string; inside: string; writable: boolean }>;
  tmpfs: Array<{ inside: string; sizeBytes: number }>;
  network: RunNetwork;
  /** --policy FILE: the file is the policy (filePolicy), the flags add to it. */
  policyFile?: string;
}

/** --net: none (default), host, or rules (allow=/deny=/dns=/unix=). */
export interface RunNetwork {
  mode: 'none' | 'host' | 'rules';
  /** [cidr, port] pairs; family by the text. */
  allow: Array<[string, number]>;
  deny: Array<[string, number]>;
  dns: string[];
  unix: string[];
  /** A generated resolv.conf naming the dns= resolvers, bound at /etc/resolv.conf. */
  resolvConf?: string;
}

/** System directories bound read-only (those that exist; merged-/usr links stay links). */
export const SYSTEM_DIRS = ['/usr', '/bin', '/sbin', '/lib', '/lib64', '/lib32', '/libx32'];
/** The /etc files dynamic programs read: never the whole /etc (no /etc/shadow, no keys). */
export const ETC_FILES = ['/etc/ld.so.cache', '/etc/ld.so.conf', '/etc/localtime', '/etc/nsswitch.conf', '/etc/passwd', '/etc/group', '/etc/hosts', '/etc/host.conf', '/etc/resolv.conf', '/etc/os-release'];
export const DEV_FILES = ['/dev/null', '/dev/zero', '/dev/full', '/dev/random', '/dev/urandom'];

/** Syscalls beyond the presets that ordinary tools (coreutils, shells) make. */
const CLI_SYSCALLS = [
  'getdents64', 'getdents', 'ioctl', 'fadvise64', 'readlink', 'readlinkat', 'getcwd', 'chdir', 'fchdir',
  'uname', 'sysinfo', 'getrlimit', 'prlimit64', 'getrusage', 'times', 'umask',
  'dup', 'dup2', 'dup3', 'pipe', 'pipe2', 'fcntl', 'poll', 'ppoll', 'select', 'pselect6',
  'rt_sigaction', 'rt_sigprocmask', 'rt_sigreturn', 'sigaltstack', 'kill', 'tgkill', 'getpgrp', 'setpgid', 'getpgid', 'getsid',
  'clone', 'fork', 'vfork', 'execve', 'execveat', 'wait4', 'waitid',
  'getpid', 'getppid', 'gettid', 'getuid', 'geteuid', 'getgid', 'getegid', 'getresuid', 'getresgid', 'getgroups',
  'mkdir', 'mkdirat', 'rmdir', 'unlink', 'unlinkat', 'rename', 'renameat', 'renameat2', 'link', 'linkat', 'symlink', 'symlinkat',
  'chmod', 'fchmod', 'fchmodat', 'utimensat', 'ftruncate', 'truncate', 'fsync', 'fdatasync', 'sync',
  'sendfile', 'copy_file_range', 'splice', 'memfd_create', 'statfs', 'fstatfs', 'madvise', 'mremap', 'sched_getaffinity', 'sched_yield',
  'getrandom', 'set_robust_list', 'rseq', 'membarrier', 'prctl',
];

export function defaultPolicy(binary: string, o: RunPolicyOptions): Policy {
  const b = new PolicyBuilder();
  // The user's rules first: the first rule on a syscall wins, so --errno uname=EPERM beats the
  // startup preset that allows uname.
  for (const [name, errno] of o.errno) b.blockSyscallWithErrno(name, errno);
  for (const name of o.allow) b.allowSyscall(name);
  b.allowDynamicStartup()
    .allowSystemMalloc()
    .allowRead()
    .allowWrite()
    .allowOpen()
    .allowStat()
    .allowAccess()
    .allowExit()
    .allowTime()
    .allowSleep()
    .allowFutex()
    .allowSyscalls(CLI_SYSCALLS);

  for (const d of SYSTEM_DIRS) if (existsSync(d)) addPath(b, d);
  for (const f of ETC_FILES) if (existsSync(f) && !(f === '/etc/resolv.conf' && o.network.resolvConf)) b.addFile(f);
  if (o.network.resolvConf) b.addFileAt(o.network.resolvConf, '/etc/resolv.conf');
  for (const f of DEV_FILES) if (existsSync(f)) b.addFile(f, { writable: true });
  b.addDirectory('/proc');
  if (!o.tmpfs.some((t) => t.inside === '/tmp')) b.addTmpfs('/tmp', { sizeBytes: 64 * 2 ** 20 });
  for (const t of o.tmpfs) b.addTmpfs(t.inside, { sizeBytes: t.sizeBytes });
  for (const m of o.mounts) {
    const dir = lstatSync(m.outside, { throwIfNoEntry: false })?.isDirectory() ?? true;
    if (dir) b.addDirectoryAt(m.outside, m.inside, { writable: m.writable });
    else b.addFileAt(m.outside, m.inside, { writable: m.writable });
  }
  // A binary inside the bound system directories finds its interpreter and libraries there.
  if (!SYSTEM_DIRS.some((d) => binary.startsWith(`${d}/`) && existsSync(d))) b.addLibrariesForBinary(binary);
  addNetwork(b, o.network);
  return b.build();
}

/**
 * `sbx run --policy FILE`: the file is the policy, plus CMD's interpreter and libraries (unless
 * the file lists librariesFor or binds a directory CMD is in); --errno and --allow come first (the
 * first rule on a syscall wins), --mount, --tmpfs and --net add to it. `pf` is the policy-file
 * module, which the caller imports only when --policy is given (ajv costs ~20 ms to load).
 */
export function filePolicy(binary: string, o: RunPolicyOptions, pf: typeof PolicyFileModule): Policy {
  const { readPolicyFile, applyPolicyFile } = pf;
  const { doc, prefix } = readPolicyFile(o.policyFile!);
  const b = new PolicyBuilder();
  for (const [name, errno] of o.errno) b.blockSyscallWithErrno(name, errno);
  for (const name of o.allow) b.allowSyscall(name);
  const problems = applyPolicyFile(doc, b, prefix);
  if (problems.length) throw new PolicyError('INVALID_POLICY', problems);
  for (const t of o.tmpfs) b.addTmpfs(t.inside, { sizeBytes: t.sizeBytes });
  for (const m of o.mounts) {
    const dir = lstatSync(m.outside, { throwIfNoEntry: false })?.isDirectory() ?? true;
    if (dir) b.addDirectoryAt(m.outside, m.inside, { writable: m.writable });
    else b.addFileAt(m.outside, m.inside, { writable: m.writable });
  }
  const dirs = (doc.directories ?? []).map((d) => d.inside ?? d.path);
  if (doc.librariesFor === undefined && !dirs.some((d) => binary.startsWith(d.endsWith('/') ? d : `${d}/`))) b.addLibrariesForBinary(binary);
  if (o.network.resolvConf) b.addFileAt(o.network.resolvConf, '/etc/resolv.conf');
  addNetwork(b, o.network);
  return b.build();
}

function addNetwork(b: PolicyBuilder, net: RunNetwork): void {
  // A network other than none: the calls a client makes (socket for unix/IPv4/IPv6, connect, ...).
  if (net.mode !== 'none') b.allowNetworkClient();
  if (net.mode === 'host') b.allowUnrestrictedNetworking();
  const family = (cidr: string): 4 | 6 => (cidr.includes(':') ? 6 : 4);
  for (const [cidr, port] of net.allow) (family(cidr) === 4 ? b.allowIPv4(cidr, port) : b.allowIPv6(cidr, port));
  for (const [cidr, port] of net.deny) (family(cidr) === 4 ? b.denyIPv4(cidr, port) : b.denyIPv6(cidr, port));
  if (net.dns.length) b.allowDns(net.dns);
  for (const p of net.unix) b.allowUnixSocket(p);
}

function addPath(b: PolicyBuilder, p: string): void {
  // A merged-/usr link (/bin -> usr/bin) is bound like a directory; the mount planner turns an
  // identity bind of a host symlink into the same symlink inside.
  b.addDirectory(p);
}
