// resolve.ts: finds a command as the sandbox will see it: a path inside the view, or a bare name
// looked up in the sandbox's PATH, mapped back to the host file the forkserver opens. Symlinks
// are followed inside the view (an absolute link target names a path of the view, not of the host).
import {
  accessSync,
  closeSync,
  constants as fsc,
  lstatSync,
  openSync,
  readSync,
  readlinkSync,
  statSync,
} from 'node:fs';
import { posix } from 'node:path';
import type { Mount } from '../policy/policy.js';
import { SbxError } from '@sbx/client';

/** How many symlinks one lookup follows before giving up (the kernel's limit). */
const MAX_LINKS = 40;

/** A command the view does not show (code BINARY_NOT_FOUND, as the Executor's own lookup). */
export class ViewLookupError extends SbxError {
  constructor(message: string) {
    super('BINARY_NOT_FOUND', message);
  }
}

/** The host path shown at `inside` by the view's binds (the deepest mount wins); null when none shows it. */
export function hostPathOf(inside: string, mounts: readonly Mount[]): string | null {
  let best: Mount | null = null;
  for (const m of mounts) {
    const covers =
      m.inside === inside || (m.kind !== 'file' && (m.inside === '/' || inside.startsWith(`${m.inside}/`)));
    if (covers && (!best || m.inside.length > best.inside.length)) best = m;
  }
  if (!best || best.kind === 'tmpfs') return null;
  // addDirectory('/proc') and addDirectory('/dev') are the sandbox's own (sandbox-policy.ts),
  // not the host's: nothing in them is a host file.
  if (best.kind === 'dir' && (best.outside === '/proc' || best.outside === '/dev')) return null;
  return best.outside + inside.slice(best.inside.length);
}

/** Resolves an absolute path of the view component by component; returns the host path of the result or null. */
function resolveInside(path: string, mounts: readonly Mount[]): string | null {
  let links = 0;
  let todo = path.split('/').filter(Boolean);
  let cur = '';
  while (todo.length) {
    const part = todo.shift()!;
    if (part === '.') continue;
    if (part === '..') {
      cur = posix.dirname(cur || '/');
      if (cur === '/') cur = '';
      continue;
    }
    const next = `${cur}/${part}`;
    const host = hostPathOf(next, mounts);
    if (host === null) {
      // A directory the mount tree made to hold deeper mounts (/etc for /etc/alternatives).
      if (mounts.some((m) => m.inside.startsWith(`${next}/`))) {
        cur = next;
        continue;
      }
      return null;
    }
    // The root of a bind from elsewhere is what its source resolves to on the host (the kernel
    // follows a source symlink when it binds); any other link is read inside the view.
    const mountRoot = mounts.some((m) => m.inside === next && m.kind !== 'tmpfs' && m.outside !== m.inside);
    const st = mountRoot ? statSync(host, { throwIfNoEntry: false }) : lstatSync(host, { throwIfNoEntry: false });
    if (!st) return null;
    if (st.isSymbolicLink()) {
      if (++links > MAX_LINKS) return null;
      const target = readlinkSync(host);
      todo = [...target.split('/').filter(Boolean), ...todo];
      if (target.startsWith('/')) cur = '';
      continue;
    }
    cur = next;
  }
  return hostPathOf(cur || '/', mounts);
}

/** A regular file this process may execute (the check both the host and the view lookups make). */
export function isExecutableFile(p: string): boolean {
  try {
    accessSync(p, fsc.X_OK);
    return statSync(p).isFile();
  } catch {
    return false;
  }
}

/** Where `cmd` is in the view: its path inside and the host file behind it. */
export function locateInView(
  cmd: string,
  mounts: readonly Mount[],
  pathEnv: string,
  cwd = '/',
): { inside: string; host: string } {
  if (typeof cmd !== 'string' || cmd === '' || cmd.includes('\0'))
    throw new TypeError(`resolveInView: the command must be a non-empty string, got ${JSON.stringify(cmd)}`);
  if (cmd.includes('/')) {
    const inside = posix.resolve(cwd, cmd);
    const host = resolveInside(inside, mounts);
    if (host === null || !statSync(host, { throwIfNoEntry: false }))
      throw new ViewLookupError(`${inside} does not exist in the sandbox's view`);
    if (!isExecutableFile(host))
      throw new ViewLookupError(`${inside} in the sandbox's view is not an executable file (host ${host})`);
    return { inside, host };
  }
  for (const dir of pathEnv.split(':')) {
    if (!dir.startsWith('/')) continue;
    const inside = posix.join(dir, cmd);
    const host = resolveInside(inside, mounts);
    if (host !== null && isExecutableFile(host)) return { inside, host };
  }
  throw new ViewLookupError(`"${cmd}" was not found in the sandbox's PATH (${pathEnv}) within its view`);
}

/**
 * The host file the sandbox runs for `cmd`: a path (relative ones from `cwd`) inside the view, or
 * a bare name in the first directory of `pathEnv` (the sandbox's PATH) that holds an executable
 * file, as execvp does inside. Throws ViewLookupError (code BINARY_NOT_FOUND) when the view has none.
 */
export function resolveInView(cmd: string, mounts: readonly Mount[], pathEnv: string, cwd = '/'): string {
  return locateInView(cmd, mounts, pathEnv, cwd).host;
}

/** The kernel reads this much of a #! line, and follows this many nested interpreters. */
const SHEBANG_BYTES = 256;
const MAX_INTERPRETERS = 4;

/** A #! line's interpreter and its optional single argument, as the kernel splits it; null if not a script. */
export function readShebang(host: string): { interpreter: string; arg?: string } | null {
  const buf = Buffer.alloc(SHEBANG_BYTES);
  let n = 0;
  let fd = -1;
  try {
    fd = openSync(host, 'r');
    n = readSync(fd, buf, 0, SHEBANG_BYTES, 0);
  } catch {
    return null;
  } finally {
    if (fd >= 0) closeSync(fd);
  }
  const text = buf.subarray(0, n).toString('latin1');
  if (!text.startsWith('#!')) return null;
  const line = text
    .slice(2)
    .split('\n')[0]!
    .replace(/^[ \t]+/, '')
    .replace(/[ \t]+$/, '');
  const m = /^(\S+)(?:[ \t]+(.*))?$/.exec(line);
  if (!m) return null;
  return m[2] ? { interpreter: m[1]!, arg: m[2] } : { interpreter: m[1]! };
}

/**
 * A command resolved in the view, as the kernel would run it inside: a #! script becomes its
 * interpreter (found in the view) with the script's path inside as an argument, so the script
 * runs even though the forkserver execs by fd (the kernel cannot hand a script's fd path on).
 */
export function resolveCommandInView(
  cmd: string,
  argv: readonly string[],
  mounts: readonly Mount[],
  pathEnv: string,
  cwd = '/',
): { path: string; argv: string[] } {
  let { inside, host } = locateInView(cmd, mounts, pathEnv, cwd);
  let args = [...argv];
  for (let depth = 0; ; depth++) {
    const sb = readShebang(host);
    if (!sb) return { path: host, argv: args };
    if (depth === MAX_INTERPRETERS)
      throw new ViewLookupError(`${inside}: more than ${MAX_INTERPRETERS} nested #! interpreters`);
    if (!sb.interpreter.startsWith('/'))
      throw new ViewLookupError(`${inside}: the #! interpreter "${sb.interpreter}" is not an absolute path`);
    args = [sb.interpreter, ...(sb.arg !== undefined ? [sb.arg] : []), inside, ...args.slice(1)];
    ({ inside, host } = locateInView(sb.interpreter, mounts, pathEnv, cwd));
  }
}
