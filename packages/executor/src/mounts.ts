// mounts.ts: turns a sandbox's filesystem layout (data from the policy) into forkserver ops.
// Identity binds of host symlinks become symlinks (on merged-/usr systems /bin, /lib, /lib64 are
// links into /usr), so the tree inside looks like the host's.
import { lstatSync, readlinkSync } from 'node:fs';
import { isAbsolute, normalize } from 'node:path';
import { BindFlag, Op, type OpList } from './forkserver-protocol.js';

export type FsEntry =
  | { type: 'bind'; outside: string; inside: string; writable: boolean; optional?: boolean; dev?: boolean }
  | { type: 'tmpfs'; inside: string; sizeBytes: number; mode?: number }
  | { type: 'proc'; inside: string }
  | { type: 'dev'; inside: string };

export class MountError extends Error {
  readonly code = 'BAD_MOUNT';
}

/** Appends the mount ops, parents before children, dropping binds an identical parent bind already covers. */
export function addMountOps(ops: OpList, entries: readonly FsEntry[]): void {
  const sorted = [...entries].map(normalizeEntry).sort((a, b) => depth(a.inside) - depth(b.inside));
  const identityBinds: Array<{ path: string; writable: boolean }> = [];
  for (const e of sorted) {
    switch (e.type) {
      case 'bind': {
        // Already visible through a parent bind of the same host directory with the same access.
        const covered = e.outside === e.inside && identityBinds.some((p) => isUnder(e.inside, p.path) && p.writable === e.writable);
        if (covered) break;
        let link: string | null = null;
        try {
          link = lstatSync(e.outside).isSymbolicLink() ? readlinkSync(e.outside) : null;
        } catch {
          if (!e.optional) throw new MountError(`mount source ${e.outside} does not exist (mapped to ${e.inside} in the sandbox)`);
          break;
        }
        if (link !== null && e.outside === e.inside) {
          ops.symlink(link, e.inside);
          break;
        }
        let flags = e.writable ? BindFlag.Rw : 0;
        if (e.optional) flags |= BindFlag.Optional;
        if (e.dev) flags |= BindFlag.Dev;
        ops.bind(e.outside, e.inside, flags);
        if (e.outside === e.inside) identityBinds.push({ path: e.inside, writable: e.writable });
        break;
      }
      case 'tmpfs':
        ops.tmpfs(e.inside, e.sizeBytes, e.mode ?? 0o1777);
        break;
      case 'proc':
        ops.str(Op.Proc, e.inside);
        break;
      case 'dev':
        ops.str(Op.Dev, e.inside);
        break;
    }
  }
}

function normalizeEntry(e: FsEntry): FsEntry {
  const inside = checkPath('inside', e.inside);
  if (e.type === 'bind') return { ...e, inside, outside: checkPath('outside', e.outside) };
  return { ...e, inside };
}

function checkPath(what: string, p: string): string {
  if (typeof p !== 'string' || !isAbsolute(p)) throw new MountError(`mount ${what} path must be absolute, got ${JSON.stringify(p)}`);
  if (p.includes('\0')) throw new MountError(`mount ${what} path contains a NUL byte`);
  const n = normalize(p);
  return n.length > 1 && n.endsWith('/') ? n.slice(0, -1) : n;
}

function depth(p: string): number {
  return p === '/' ? 0 : p.split('/').length;
}

function isUnder(p: string, parent: string): boolean {
  return parent === '/' || p.startsWith(parent + '/');
}
