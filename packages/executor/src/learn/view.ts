// view.ts: the filesystem view and network of a learning run as policy-file fields. Learning
// records syscalls, not paths (paths are in memory, which the monitor never reads), so the learned
// policy keeps exactly the view the program was learned under: `sbx run`'s standard view
// (view: "standard") plus the run's --mount and --tmpfs, or none at all (withoutView).
import { lstatSync } from 'node:fs';
import type { RunNetwork } from '../cli/default-policy.js';
import { needsLibraries } from '../cli/default-policy.js';
import type { PolicyFile, PolicyFileBind } from '../policy-file/policy-file.js';

export interface ViewOptions {
  /** Extra binds: SRC at DST, read-only unless writable. */
  readonly mounts?: ReadonlyArray<{ outside: string; inside: string; writable: boolean }>;
  /** Extra tmpfs mounts (one at /tmp replaces the default 64 MiB /tmp). */
  readonly tmpfs?: ReadonlyArray<{ inside: string; sizeBytes: number }>;
  readonly network?: RunNetwork;
}

/** `sbx run`'s default view (the standard view, the flags' mounts) for this binary, as policy-file fields. */
export function defaultView(binary: string, o: ViewOptions = {}): PolicyFile {
  const directories: PolicyFileBind[] = [];
  const files: PolicyFileBind[] = [];
  const tmpfs: NonNullable<PolicyFile['tmpfs']> = [];
  for (const t of o.tmpfs ?? []) tmpfs.push({ path: t.inside, size: t.sizeBytes });
  for (const m of o.mounts ?? []) {
    const bind: PolicyFileBind = {
      path: m.outside,
      ...(m.inside !== m.outside ? { inside: m.inside } : {}),
      ...(m.writable ? { writable: true } : {}),
    };
    const dir = lstatSync(m.outside, { throwIfNoEntry: false })?.isDirectory() ?? true;
    (dir ? directories : files).push(bind);
  }
  const doc: PolicyFile = { view: 'standard' };
  if (files.length) doc.files = files;
  if (directories.length) doc.directories = directories;
  if (tmpfs.length) doc.tmpfs = tmpfs;
  // A binary outside the system directories brings its interpreter and libraries.
  doc.librariesFor = needsLibraries(binary) ? [binary] : [];
  const net = o.network;
  if (net && net.mode === 'host') doc.network = { mode: 'host' };
  else if (net && net.mode === 'rules') {
    const fmt = ([cidr, port]: [string, number]): string =>
      port ? (cidr.includes(':') ? `[${cidr}]:${port}` : `${cidr}:${port}`) : cidr;
    doc.network = { mode: 'rules' };
    if (net.allow.length) doc.network.allow = net.allow.map(fmt);
    if (net.deny.length) doc.network.deny = net.deny.map(fmt);
    if (net.dns.length) doc.network.dns = [...net.dns];
    if (net.unix.length) doc.network.unix = [...net.unix];
  }
  return doc;
}

/**
 * The policy without its file view (view, files, directories, tmpfs, librariesFor): the syscall
 * rules and the network only, for a caller that keeps one view of its own for several policies
 * (spawn pool slots are keyed by the view, so they stay shared).
 */
export function withoutView(doc: PolicyFile): PolicyFile {
  const { view: _v, files: _f, directories: _d, tmpfs: _t, librariesFor: _l, ...rest } = doc;
  return rest;
}
