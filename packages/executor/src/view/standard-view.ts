// standard-view.ts: the file view `sbx run` gives a program, as one builder call
// (PolicyBuilder.addStandardView): the system directories read-only, the /etc files programs
// read (never the whole /etc: no shadow, no keys), generated identity files, a minimal /dev with
// a /dev/shm, the sandbox's own /proc and a tmpfs /tmp that is also the sandbox user's home.
import { existsSync } from 'node:fs';
import {
  SANDBOX_HOME,
  SANDBOX_USER,
  generatedFile,
  groupText,
  hostsText,
  nsswitchText,
  passwdText,
} from './identity.js';

/** System directories bound read-only (those that exist; merged-/usr links stay links). */
export const SYSTEM_DIRS = ['/usr', '/bin', '/sbin', '/lib', '/lib64', '/lib32', '/libx32'] as const;
/**
 * Host /etc files programs read: the loader cache, time zone, resolver and service tables,
 * TLS trust settings, file(1)'s magic. passwd, group, nsswitch.conf and hosts are generated
 * (identity.ts) in namespaces isolation.
 */
export const ETC_FILES = [
  '/etc/ld.so.cache',
  '/etc/ld.so.conf',
  '/etc/localtime',
  '/etc/timezone',
  '/etc/host.conf',
  '/etc/resolv.conf',
  '/etc/os-release',
  '/etc/protocols',
  '/etc/services',
  '/etc/gai.conf',
  '/etc/mime.types',
  '/etc/magic',
  '/etc/magic.mime',
  '/etc/ssl/openssl.cnf',
] as const;
/** Host /etc directories: the alternatives links (awk, editor, ...) and the public CA certificates. */
export const ETC_DIRS = ['/etc/alternatives', '/etc/ssl/certs'] as const;
export const DEV_FILES = ['/dev/null', '/dev/zero', '/dev/full', '/dev/random', '/dev/urandom'] as const;
/** What the default view's /tmp and /dev/shm hold at most. */
export const STANDARD_TMP_BYTES = 64 * 2 ** 20;
export const DEFAULT_SANDBOX_PATH = '/usr/local/bin:/usr/bin:/bin';

export interface StandardViewOptions {
  /**
   * 'namespaces' (default): the view above. 'landlock' (no mount namespace): every path at its
   * own host path, so the host's passwd, group, nsswitch.conf and hosts instead of generated
   * ones, and no /dev/shm.
   */
  readonly isolation?: 'namespaces' | 'landlock';
  /** Size of the /tmp tmpfs in bytes (default 64 MiB); false: no /tmp (the caller mounts its own). */
  readonly tmp?: number | false;
  /** The hostname the generated /etc/hosts names (default "sandbox", the Executor's default). */
  readonly hostname?: string;
  /** A host file to show at /etc/resolv.conf instead of the host's own (sbx run --net dns=). */
  readonly resolvConf?: string;
}

/** The part of PolicyBuilder a view is built with (structural, so this module does not import
 *  the builder that calls it). */
export interface ViewBuilder {
  addDirectory(path: string, options?: { writable?: boolean }): unknown;
  addFile(path: string, options?: { writable?: boolean }): unknown;
  addFileAt(outside: string, inside: string, options?: { writable?: boolean }): unknown;
  addTmpfs(inside: string, options?: { sizeBytes?: number }): unknown;
}

export function addStandardView(b: ViewBuilder, o: StandardViewOptions = {}): void {
  if (o === null || typeof o !== 'object') throw new TypeError('addStandardView(options): options must be an object');
  const isolation = o.isolation ?? 'namespaces';
  if (isolation !== 'namespaces' && isolation !== 'landlock')
    throw new TypeError(
      `addStandardView: isolation must be 'namespaces' or 'landlock', got ${JSON.stringify(isolation)}`,
    );
  const tmp = o.tmp ?? STANDARD_TMP_BYTES;
  if (tmp !== false && (typeof tmp !== 'number' || !Number.isSafeInteger(tmp) || tmp < 0))
    throw new TypeError(`addStandardView: tmp must be a size in bytes or false, got ${String(tmp)}`);
  const hostname = o.hostname ?? 'sandbox';
  if (typeof hostname !== 'string' || !/^[A-Za-z0-9.-]{1,64}$/.test(hostname))
    throw new TypeError(
      `addStandardView: hostname must be 1..64 letters, digits, dots or dashes, got ${JSON.stringify(hostname)}`,
    );

  // A merged-/usr link (/bin -> usr/bin) is bound like a directory; the mount planner turns an
  // identity bind of a host symlink into the same symlink inside.
  for (const d of SYSTEM_DIRS) if (existsSync(d)) b.addDirectory(d);
  for (const f of ETC_FILES) {
    if (f === '/etc/resolv.conf' && o.resolvConf !== undefined) continue;
    if (existsSync(f)) b.addFile(f);
  }
  if (o.resolvConf !== undefined) b.addFileAt(o.resolvConf, '/etc/resolv.conf');
  for (const d of ETC_DIRS) if (existsSync(d)) b.addDirectory(d);
  if (isolation === 'namespaces') {
    b.addFileAt(generatedFile('passwd', passwdText()), '/etc/passwd');
    b.addFileAt(generatedFile('group', groupText()), '/etc/group');
    b.addFileAt(generatedFile('nsswitch.conf', nsswitchText()), '/etc/nsswitch.conf');
    b.addFileAt(generatedFile('hosts', hostsText(hostname)), '/etc/hosts');
  } else {
    for (const f of ['/etc/passwd', '/etc/group', '/etc/nsswitch.conf', '/etc/hosts']) if (existsSync(f)) b.addFile(f);
  }
  // The sandbox's own minimal /dev (null, zero, full, random, urandom, the fd links), and a
  // /dev/shm for POSIX shared memory and semaphores (Python's multiprocessing locks).
  // Landlock isolation has no /dev of its own: the harmless host nodes, allowed one by one.
  if (isolation === 'namespaces') {
    b.addDirectory('/dev');
    b.addTmpfs('/dev/shm', { sizeBytes: STANDARD_TMP_BYTES });
  } else {
    for (const f of DEV_FILES) if (existsSync(f)) b.addFile(f, { writable: true });
  }
  b.addDirectory('/proc');
  if (tmp !== false) b.addTmpfs('/tmp', { sizeBytes: tmp });
}

/**
 * The environment that goes with the standard view: PATH, and HOME, USER and LOGNAME naming the
 * sandbox user (its home is the tmpfs /tmp). Executor options take it as `env`.
 */
export function standardEnvironment(extra: Record<string, string> = {}): Record<string, string> {
  return { PATH: DEFAULT_SANDBOX_PATH, HOME: SANDBOX_HOME, USER: SANDBOX_USER, LOGNAME: SANDBOX_USER, ...extra };
}
