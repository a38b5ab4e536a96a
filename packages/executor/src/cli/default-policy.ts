// default-policy.ts: the policy `sbx run` uses: PolicyBuilder.allowCommandLine() (what ordinary
// command-line programs need, by syscall family) on addStandardView() (read-only system
// directories, generated identity files, /dev, /proc, a tmpfs /tmp); no network unless --net.
import { closeSync, existsSync, lstatSync, openSync, readSync } from 'node:fs';
import { schedulingSelfRules } from '../policy/command-line.js';
import { PolicyBuilder } from '../policy/policy-builder.js';
import type * as PolicyFileModule from '../policy-file/policy-file.js';
import { PolicyError } from '../policy/errors.js';
import { withPrecompiledRules } from './precompiled-policy.js';
import type { Policy } from '../policy/policy.js';
import { SYSTEM_DIRS } from '../view/standard-view.js';

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

export { SYSTEM_DIRS } from '../view/standard-view.js';

/** The calls that create or open a host IPC object (landlock isolation shares the host's IPC namespace). */
export const LANDLOCK_HOST_IPC = ['shmget', 'semget', 'msgget', 'mq_open'] as const;

export interface RunViewOptions {
  isolation?: 'namespaces' | 'landlock';
  hostname?: string;
}

/**
 * The default policy: PolicyBuilder.allowCommandLine() and addStandardView(), the same two calls
 * an SDK user makes; then the flags' mounts, tmpfs and network. `binary` (the host file CMD
 * resolved to) brings its interpreter and libraries when it is outside the system directories;
 * null builds the view alone (to resolve CMD in it first).
 */
export function defaultPolicy(binary: string | null, o: RunPolicyOptions, view: RunViewOptions = {}): Policy {
  // Without flags that change the rules, allowCommandLine() comes precompiled (precompiled-policy.ts).
  if (!o.allow.length && !o.errno.length && o.network.mode === 'none' && view.isolation !== 'landlock') {
    const joined = withPrecompiledRules(buildDefault(binary, o, view, false));
    if (joined) return joined;
  }
  return buildDefault(binary, o, view, true);
}

/** The default policy, with allowCommandLine() or (for withPrecompiledRules) without it. */
export function buildDefault(
  binary: string | null,
  o: RunPolicyOptions,
  view: RunViewOptions,
  commandLine: boolean,
): Policy {
  const b = new PolicyBuilder();
  // The user's rules first: the first rule on a syscall wins, so --errno uname=EPERM beats the
  // preset that allows uname.
  for (const [name, errno] of o.errno) b.blockSyscallWithErrno(name, errno);
  for (const name of o.allow) b.allowSyscall(name);
  // Landlock isolation shares the host's IPC namespace: SysV segments, semaphores and message
  // queues and POSIX message queues are host objects, bounded host-wide (kernel.shmmni 4096,
  // msgmni 32000, fs.mqueue.queues_max 256), reachable by key or name, and they outlive the
  // sandbox. Creating or opening one is EPERM unless --allow names the call.
  if (view.isolation === 'landlock')
    for (const name of LANDLOCK_HOST_IPC)
      if (!o.allow.includes(name) && !o.errno.some(([n]) => n === name)) b.blockSyscallWithErrno(name, 'EPERM');
  // It also shares the host's pid namespace, and its uid may be shared with processes outside
  // (an unprivileged executor, an explicit --sandbox-user): scheduling calls act on itself only.
  if (view.isolation === 'landlock') {
    for (const [name, rule] of schedulingSelfRules())
      if (!o.allow.includes(name) && !o.errno.some(([n]) => n === name)) b.addPolicyOnSyscall(name, rule);
  }
  if (commandLine) b.allowCommandLine();
  const ownTmp = o.tmpfs.some((t) => t.inside === '/tmp');
  b.addStandardView({
    ...(view.isolation ? { isolation: view.isolation } : {}),
    ...(view.hostname ? { hostname: view.hostname } : {}),
    ...(ownTmp ? { tmp: false as const } : {}),
    ...(o.network.resolvConf ? { resolvConf: o.network.resolvConf } : {}),
  });
  for (const t of o.tmpfs) b.addTmpfs(t.inside, { sizeBytes: t.sizeBytes });
  addMounts(b, o.mounts);
  // A binary inside the bound system directories finds its interpreter and libraries there.
  if (binary !== null && needsLibraries(binary)) b.addLibrariesForBinary(binary);
  addNetwork(b, o.network);
  return b.build();
}

export function inSystemDirs(binary: string): boolean {
  return SYSTEM_DIRS.some((d) => binary.startsWith(`${d}/`) && existsSync(d));
}

/**
 * Whether a binary needs its interpreter and libraries added to the standard view: an ELF file
 * outside the system directories.
 */
export function needsLibraries(binary: string): boolean {
  return !inSystemDirs(binary) && !isScript(binary);
}

/** A #! script has no libraries of its own (the kernel finds its interpreter in the view). */
export function isScript(binary: string): boolean {
  const head = Buffer.alloc(2);
  let fd = -1;
  try {
    fd = openSync(binary, 'r');
    readSync(fd, head, 0, 2, 0);
  } catch {
    return false; // addLibrariesForBinary reports what is wrong with it
  } finally {
    if (fd >= 0) closeSync(fd);
  }
  return head.toString('latin1') === '#!';
}

function addMounts(b: PolicyBuilder, mounts: RunPolicyOptions['mounts']): void {
  for (const m of mounts) {
    const dir = lstatSync(m.outside, { throwIfNoEntry: false })?.isDirectory() ?? true;
    if (dir) b.addDirectoryAt(m.outside, m.inside, { writable: m.writable });
    else b.addFileAt(m.outside, m.inside, { writable: m.writable });
  }
}

/**
 * `sbx run --policy FILE`: the file is the policy, plus CMD's interpreter and libraries (unless
 * the file lists librariesFor or binds a directory CMD is in); --errno and --allow come first (the
 * first rule on a syscall wins), --mount, --tmpfs and --net add to it. `pf` is the policy-file
 * module, which the caller imports only when --policy is given (ajv costs ~20 ms to load).
 */
export function filePolicy(
  binary: string | null,
  o: RunPolicyOptions,
  pf: typeof PolicyFileModule,
  view: RunViewOptions = {},
): Policy {
  const { readPolicyFile, applyPolicyFile } = pf;
  const { doc, prefix } = readPolicyFile(o.policyFile!);
  const b = new PolicyBuilder();
  for (const [name, errno] of o.errno) b.blockSyscallWithErrno(name, errno);
  for (const name of o.allow) b.allowSyscall(name);
  // A file with the standard view takes the run's resolv.conf (--net dns=) through the view.
  const standard = doc.view === 'standard';
  const problems = applyPolicyFile(doc, b, prefix, {
    ...view,
    ...(standard && o.network.resolvConf ? { resolvConf: o.network.resolvConf } : {}),
  });
  if (problems.length) throw new PolicyError('INVALID_POLICY', problems);
  for (const t of o.tmpfs) b.addTmpfs(t.inside, { sizeBytes: t.sizeBytes });
  addMounts(b, o.mounts);
  const dirs = (doc.directories ?? []).map((d) => d.inside ?? d.path);
  const viewDirs = doc.view === 'standard' ? [...SYSTEM_DIRS] : [];
  if (
    binary !== null &&
    doc.librariesFor === undefined &&
    !isScript(binary) &&
    ![...dirs, ...viewDirs].some((d) => binary.startsWith(d.endsWith('/') ? d : `${d}/`))
  )
    b.addLibrariesForBinary(binary);
  if (o.network.resolvConf && !standard) b.addFileAt(o.network.resolvConf, '/etc/resolv.conf');
  addNetwork(b, o.network);
  return b.build();
}

function addNetwork(b: PolicyBuilder, net: RunNetwork): void {
  // A network other than none: the calls a client makes (socket for unix/IPv4/IPv6, connect, ...).
  if (net.mode !== 'none') b.allowNetworkClient();
  if (net.mode === 'host') b.allowUnrestrictedNetworking();
  const family = (cidr: string): 4 | 6 => (cidr.includes(':') ? 6 : 4);
  for (const [cidr, port] of net.allow) family(cidr) === 4 ? b.allowIPv4(cidr, port) : b.allowIPv6(cidr, port);
  for (const [cidr, port] of net.deny) family(cidr) === 4 ? b.denyIPv4(cidr, port) : b.denyIPv6(cidr, port);
  if (net.dns.length) b.allowDns(net.dns);
  for (const p of net.unix) b.allowUnixSocket(p);
}
