// mounts.ts: turns a sandbox's filesystem layout (data from the policy) into forkserver ops.
// Identity binds of host symlinks become symlinks (on merged-/usr systems /bin, /lib, /lib64 are
// links into /usr), so the tree inside looks like the host's.
import { lstatSync, readlinkSync, realpathSync } from 'node:fs';
import { isAbsolute, normalize } from 'node:path';
import { BindFlag, Op, type OpList } from '../forkserver/protocol.js';
import { SbxError } from '@sbx/client';

export type FsEntry =
  | { type: 'bind'; outside: string; inside: string; writable: boolean; optional?: boolean; dev?: boolean }
  | { type: 'tmpfs'; inside: string; sizeBytes: number; mode?: number }
  | { type: 'proc'; inside: string }
  | { type: 'dev'; inside: string };

export class MountError extends SbxError {
  declare readonly code: 'BAD_MOUNT';
  constructor(message: string) {
    super('BAD_MOUNT', message);
  }
}

/**
 * Appends the mount ops, parents before children. An identity bind (same path inside as outside)
 * reproduces the host's symlinks on its way: /lib64/ld-linux-x86-64.so.2 on a merged-/usr host
 * becomes the link /lib64 -> usr/lib64 plus a bind at /usr/lib64/..., so every path a binary
 * names resolves inside as it does outside. Binds already visible through an identity bind of a
 * parent directory with the same access are dropped.
 */
export function addMountOps(ops: OpList, entries: readonly FsEntry[], probes?: HostProbes): void {
  const { exists, isSymlink, isDirectory, readlinkSync, realpathSync } = probes ?? directProbes;
  const planned: Array<{ depth: number; order: number; emit: () => void }> = [];
  const links = new Map<string, string>();
  const identityBinds: Array<{ path: string; writable: boolean }> = [];
  let order = 0;
  const plan = (path: string, emit: () => void) => planned.push({ depth: depth(path), order: order++, emit });

  const normalized = entries.map(normalizeEntry);
  // Identity directory binds first, so that later entries can see what they cover.
  for (const e of normalized) {
    if (e.type === 'bind' && e.outside === e.inside && !isSymlink(e.outside) && isDirectory(e.outside)) {
      identityBinds.push({ path: e.inside, writable: e.writable });
    }
  }
  const covered = (path: string, writable: boolean) =>
    identityBinds.some((p) => isUnder(path, p.path) && p.writable === writable);

  for (const e of normalized) {
    switch (e.type) {
      case 'bind': {
        let target = e.inside;
        if (e.outside === e.inside) {
          if (!exists(e.outside)) {
            if (e.optional) break;
            throw new MountError(`mount source ${e.outside} does not exist`);
          }
          target = resolveAncestors(e.inside, links, (link) => !covered(link, false) && !covered(link, true));
          if (covered(target, e.writable)) break; // visible through a parent bind already
          const link = isSymlink(target) ? readlinkSync(target) : null;
          if (link !== null) {
            if (!links.has(target)) {
              links.set(target, link);
              plan(target, () => ops.symlink(link, target));
            }
            break;
          }
        } else if (!exists(e.outside)) {
          if (e.optional) break;
          throw new MountError(`mount source ${e.outside} does not exist (mapped to ${e.inside} in the sandbox)`);
        }
        let flags = e.writable ? BindFlag.Rw : 0;
        if (e.optional) flags |= BindFlag.Optional;
        if (e.dev) flags |= BindFlag.Dev;
        const outside = e.outside === e.inside ? target : e.outside;
        plan(target, () => ops.bind(outside, target, flags));
        break;
      }
      case 'tmpfs':
        plan(e.inside, () => ops.tmpfs(e.inside, e.sizeBytes, e.mode ?? 0o1777));
        break;
      case 'proc':
        plan(e.inside, () => ops.str(Op.Proc, e.inside));
        break;
      case 'dev':
        plan(e.inside, () => ops.str(Op.Dev, e.inside));
        break;
    }
  }
  // Links are planned lazily (as ancestors are met): emit strictly parents first.
  for (const p of planned.sort((a, b) => a.depth - b.depth || a.order - b.order)) p.emit();

  /** Walks `path`'s ancestors; each host symlink among them is recreated inside (once) and the
   *  walk goes on from its target. Returns the path with its ancestors resolved. */
  function resolveAncestors(path: string, seen: Map<string, string>, wanted: (link: string) => boolean): string {
    const parts = path.split('/').filter(Boolean);
    let cur = '';
    for (let i = 0; i < parts.length; i++) {
      const next = `${cur}/${parts[i]}`;
      if (i < parts.length - 1 && isSymlink(next)) {
        const link = readlinkSync(next);
        if (!seen.has(next) && wanted(next)) {
          seen.set(next, link);
          plan(next, () => ops.symlink(link, next));
        }
        cur = realpathSync(next);
        if (cur === '/') cur = '';
      } else {
        cur = next;
      }
    }
    return cur || '/';
  }
}

/** The host lookups a layout's ops depend on (layout-cache.ts records them to revalidate an entry). */
export interface HostProbes {
  exists(p: string): boolean;
  isSymlink(p: string): boolean;
  isDirectory(p: string): boolean;
  readlinkSync(p: string): string;
  realpathSync(p: string): string;
}

const directProbes: HostProbes = {
  exists: (p) => lstatSync(p, { throwIfNoEntry: false }) !== undefined,
  isSymlink: (p) => lstatSync(p, { throwIfNoEntry: false })?.isSymbolicLink() ?? false,
  isDirectory: (p) => lstatSync(p, { throwIfNoEntry: false })?.isDirectory() ?? false,
  readlinkSync: (p) => readlinkSync(p),
  realpathSync: (p) => realpathSync(p),
};

function normalizeEntry(e: FsEntry): FsEntry {
  const inside = checkPath('inside', e.inside);
  if (e.type === 'bind') return { ...e, inside, outside: checkPath('outside', e.outside) };
  return { ...e, inside };
}

function checkPath(what: string, p: string): string {
  if (typeof p !== 'string' || !isAbsolute(p))
    throw new MountError(`mount ${what} path must be absolute, got ${JSON.stringify(p)}`);
  if (p.includes('\0')) throw new MountError(`mount ${what} path contains a NUL byte`);
  const n = normalize(p);
  return n.length > 1 && n.endsWith('/') ? n.slice(0, -1) : n;
}

function depth(p: string): number {
  return p === '/' ? 0 : p.split('/').length;
}

function isUnder(p: string, parent: string): boolean {
  return parent === '/' || p.startsWith(`${parent}/`);
}
