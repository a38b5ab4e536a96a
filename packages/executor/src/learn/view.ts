// view.ts: the filesystem view and network of a learning run as policy-file fields. Learning
// records syscalls, not paths (paths are in memory, which the monitor never reads), so the learned
// policy keeps exactly the view the program was learned under.
import { existsSync, lstatSync } from 'node:fs';
import { DEV_FILES, ETC_FILES, SYSTEM_DIRS } from '../cli/default-policy.js';
import type { RunNetwork } from '../cli/default-policy.js';
import type { PolicyFile, PolicyFileBind } from '../policy-file/policy-file.js';

export interface ViewOptions {
  /** Extra binds: SRC at DST, read-only unless writable. */
  readonly mounts?: ReadonlyArray<{ outside: string; inside: string; writable: boolean }>;
  /** Extra tmpfs mounts (one at /tmp replaces the default 64 MiB /tmp). */
  readonly tmpfs?: ReadonlyArray<{ inside: string; sizeBytes: number }>;
  readonly network?: RunNetwork;
}

/** `sbx run`'s default view (cli/default-policy.ts) for this binary, as policy-file fields. */
export function defaultView(binary: string, o: ViewOptions = {}): PolicyFile {
  const directories: PolicyFileBind[] = SYSTEM_DIRS.filter((d) => existsSync(d)).map((path) => ({ path }));
  directories.push({ path: '/proc' });
  const files: PolicyFileBind[] = ETC_FILES.filter((f) => existsSync(f)).map((path) => ({ path }));
  files.push(...DEV_FILES.filter((f) => existsSync(f)).map((path) => ({ path, writable: true })));
  const tmpfs: NonNullable<PolicyFile['tmpfs']> = [];
  if (!o.tmpfs?.some((t) => t.inside === '/tmp')) tmpfs.push({ path: '/tmp', size: '64M' });
  for (const t of o.tmpfs ?? []) tmpfs.push({ path: t.inside, size: t.sizeBytes });
  for (const m of o.mounts ?? []) {
    const bind: PolicyFileBind = { path: m.outside, ...(m.inside !== m.outside ? { inside: m.inside } : {}), ...(m.writable ? { writable: true } : {}) };
    const dir = lstatSync(m.outside, { throwIfNoEntry: false })?.isDirectory() ?? true;
    (dir ? directories : files).push(bind);
  }
  const doc: PolicyFile = { files, directories, tmpfs };
  // A binary outside the system directories brings its interpreter and libraries.
  doc.librariesFor = SYSTEM_DIRS.some((d) => binary.startsWith(`${d}/`) && existsSync(d)) ? [] : [binary];
  const net = o.network;
  if (net && net.mode === 'host') doc.network = { mode: 'host' };
  else if (net && net.mode === 'rules') {
    const fmt = ([cidr, port]: [string, number]): string => (port ? (cidr.includes(':') ? `[${cidr}]:${port}` : `${cidr}:${port}`) : cidr);
    doc.network = { mode: 'rules' };
    if (net.allow.length) doc.network.allow = net.allow.map(fmt);
    if (net.deny.length) doc.network.deny = net.deny.map(fmt);
    if (net.dns.length) doc.network.dns = [...net.dns];
    if (net.unix.length) doc.network.unix = [...net.unix];
  }
  return doc;
}
