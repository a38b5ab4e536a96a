// layout-cache.ts: the mount (and Landlock) ops of a filesystem layout, built once per layout.
// Building them walks the host's paths (lstat, readlink, realpath for every ancestor of every
// entry); the result depends only on the layout's entries and on what those host paths are. So
// an entry is keyed by the layout's whole content (never a hash: two layouts cannot share one),
// remembers every host lookup it was built from, and is used again only while each of those
// lookups still gives the same answer (one lstat per distinct path, a readlink or realpath where
// one was made). The cached bytes are copied into each request's op list, never handed out.
import { lstatSync, readlinkSync, realpathSync } from 'node:fs';
import { OpList } from '../forkserver/protocol.js';
import { addLandlockOps } from './landlock.js';
import { addMountOps, type FsEntry, type HostProbes } from './mounts.js';

/** One host lookup and the answer it gave. */
type Probe = { kind: 'lstat' | 'readlink' | 'realpath'; path: string; answer: string };

interface LayoutEntry {
  readonly bytes: Buffer;
  readonly probes: readonly Probe[];
}

const MAX_ENTRIES = 64;
const cache = new Map<string, LayoutEntry>();
let hits = 0;
let misses = 0;

/** What lstat says of a path, as a string that changes when the path is replaced or changes type. */
function lstatAnswer(p: string): string {
  const st = lstatSync(p, { throwIfNoEntry: false });
  return st ? `${st.mode}:${st.dev}:${st.ino}:${st.ctimeMs}` : 'missing';
}

function answer(kind: Probe['kind'], path: string): string {
  try {
    if (kind === 'lstat') return lstatAnswer(path);
    if (kind === 'readlink') return readlinkSync(path);
    return realpathSync(path);
  } catch (err) {
    return `error:${(err as NodeJS.ErrnoException).code ?? 'unknown'}`;
  }
}

/** HostProbes that answer from the host and write down every distinct lookup. */
function recordingProbes(): { probes: HostProbes; seen: Map<string, Probe> } {
  const seen = new Map<string, Probe>();
  const ask = (kind: Probe['kind'], path: string): string => {
    const key = `${kind}\0${path}`;
    let p = seen.get(key);
    if (!p) seen.set(key, (p = { kind, path, answer: answer(kind, path) }));
    return p.answer;
  };
  const S_IFMT = 0o170000;
  const value = (a: string, what: string, path: string): string => {
    if (a.startsWith('error:')) {
      const err = new Error(`${what} ${path}: ${a.slice(6)}`) as NodeJS.ErrnoException;
      err.code = a.slice(6);
      throw err;
    }
    return a;
  };
  const mode = (path: string): number | null => {
    const a = value(ask('lstat', path), 'lstat', path);
    return a === 'missing' ? null : Number(a.slice(0, a.indexOf(':')));
  };
  return {
    seen,
    probes: {
      exists: (p) => mode(p) !== null,
      isSymlink: (p) => ((mode(p) ?? 0) & S_IFMT) === 0o120000,
      isDirectory: (p) => ((mode(p) ?? 0) & S_IFMT) === 0o040000,
      readlinkSync: (p) => value(ask('readlink', p), 'readlink', p),
      realpathSync: (p) => value(ask('realpath', p), 'realpath', p),
    },
  };
}

function stillValid(e: LayoutEntry): boolean {
  for (const p of e.probes) if (answer(p.kind, p.path) !== p.answer) return false;
  return true;
}

/**
 * Appends the mount ops of `entries` (and their Landlock ops when `landlock`) to `ops`, from the
 * cache when the same layout was built before and the host paths it looked at are unchanged.
 * Throws what addMountOps throws (nothing is cached then).
 */
export function appendLayoutOps(ops: OpList, entries: readonly FsEntry[], landlock: boolean): void {
  const key = `${landlock ? 1 : 0}${JSON.stringify(entries)}`;
  const hit = cache.get(key);
  if (hit && stillValid(hit)) {
    hits++;
    cache.delete(key); // most recently used last
    cache.set(key, hit);
    ops.encoded(Buffer.from(hit.bytes));
    return;
  }
  misses++;
  const built = new OpList();
  const { probes, seen } = recordingProbes();
  addMountOps(built, entries, probes);
  if (landlock) addLandlockOps(built, entries);
  const entry: LayoutEntry = Object.freeze({
    bytes: built.toBuffer(),
    probes: Object.freeze([...seen.values()].map((p) => Object.freeze(p))),
  });
  cache.delete(key);
  if (cache.size >= MAX_ENTRIES) cache.delete(cache.keys().next().value as string);
  cache.set(key, entry);
  ops.encoded(Buffer.from(entry.bytes));
}

/** Counters and size of the layout cache (tests and benchmarks). */
export function layoutCacheStats(): { entries: number; hits: number; misses: number } {
  return { entries: cache.size, hits, misses };
}

/** Empties the layout cache and zeroes its counters (tests and benchmarks). */
export function clearLayoutCache(): void {
  cache.clear();
  hits = 0;
  misses = 0;
}
