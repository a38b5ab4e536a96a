// view.ts: what a sandboxed module's forkserver must see, and the policy its children run under.
import { existsSync, realpathSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, isAbsolute, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { nativeAddonPath } from '@sbx/client/internal';
import { type ArgAlternative, argRule, type Policy, PolicyBuilder } from '@sbx/executor';
import type { BpfInsn } from '@sbx/executor/bpf';

/** fcntl F_ADD_SEALS and F_GET_SEALS: a shared buffer is sealed by its creator and its receiver. */
const F_ADD_SEALS = 1033;
const F_GET_SEALS = 1034;
/** SIGILL, SIGTRAP, SIGABRT, SIGBUS, SIGFPE, SIGSEGV. */
const FATAL_SIGNALS = [4, 5, 6, 7, 8, 11];

function ruleOf(alternatives: ArgAlternative[]): BpfInsn[] {
  const r = argRule(alternatives, 'sandboxed module policy');
  if ('problems' in r) throw new Error(r.problems.join('; '));
  return r.rule;
}

/**
 * The file `specifier` names: a file URL, an absolute path, a path relative to `from`, or a
 * package name resolved from `from` as require() would. Throws a TypeError naming the specifier.
 */
export function resolveModule(specifier: string, from: string): string {
  if (typeof specifier !== 'string' || specifier === '')
    throw new TypeError('sandboxedModule(specifier): specifier must be a non-empty string');
  let file: string;
  if (specifier.startsWith('file:')) file = fileURLToPath(specifier);
  else if (isAbsolute(specifier)) file = specifier;
  else if (specifier.startsWith('./') || specifier.startsWith('../')) file = resolve(from, specifier);
  else {
    try {
      file = createRequire(join(from, 'noop.js')).resolve(specifier);
    } catch (err) {
      throw new TypeError(`sandboxedModule("${specifier}"): cannot resolve it from ${from}: ${(err as Error).message}`);
    }
  }
  if (!existsSync(file)) throw new TypeError(`sandboxedModule("${specifier}"): ${file} does not exist`);
  return realpathSync(file);
}

/**
 * The directory to bind so that `file` and what it imports are in view: the outermost
 * node_modules on its path (it holds the package's dependencies, and pnpm's store), else the
 * nearest directory with a package.json, else the file's directory.
 */
export function viewRootOf(file: string): string {
  const parts = file.split(sep);
  const nm = parts.indexOf('node_modules');
  if (nm > 0) return parts.slice(0, nm + 1).join(sep);
  for (let d = dirname(file); ; d = dirname(d)) {
    if (existsSync(join(d, 'package.json'))) return d;
    if (dirname(d) === d) return dirname(file);
  }
}

/** The directories of `files`' view roots, without those inside another. */
export function viewDirectories(files: readonly string[]): string[] {
  const roots = [...new Set(files.map(viewRootOf))].sort();
  return roots.filter((r) => !roots.some((o) => o !== r && (r + sep).startsWith(o + sep)));
}

/** The files sbx's own side of the forkserver loads: the runner, @sbx/client, its addon, msgpackr. */
export function runnerFiles(runner: string): string[] {
  const req = createRequire(runner);
  const client = realpathSync(req.resolve('@sbx/client'));
  const msgpackr = realpathSync(createRequire(client).resolve('msgpackr'));
  return [realpathSync(runner), client, realpathSync(nativeAddonPath()), msgpackr];
}

/**
 * The forkserver's view and the children's policy: node and its libraries, /proc, the given
 * directories read-only; the Node runtime on open fds only (no file opens, no sockets), threads
 * (libuv's threadpool, which native addons use), and shared buffers (memfd + seals); the
 * shared libraries `addons` (native addons, .node files) need. `extend` adds to it (files,
 * syscalls, network rules).
 */
export function modulePolicy(
  node: string,
  directories: readonly string[],
  addons: readonly string[],
  extend?: (b: PolicyBuilder) => void,
): Policy {
  const b = new PolicyBuilder().allowNodeRuntime({ openFiles: false, threads: true });
  b.addFile(node).addLibrariesForBinary(node).addDirectory('/proc').addFile('/dev/null', { writable: true });
  for (const d of directories) b.addDirectory(d);
  for (const a of addons) b.addLibrariesForBinary(a);
  // Shared buffers: a memfd made, sized and sealed; a received one checked (fstatfs) and sealed.
  b.allowSyscalls(['memfd_create', 'ftruncate', 'fstatfs']);
  b.addPolicyOnSyscall('fcntl', ruleOf([{ arg1: [F_ADD_SEALS, F_GET_SEALS] }]));
  // A crash raises its fatal signal on the crashing thread (abort(), V8's fatal errors), so that
  // it ends as that signal rather than as a violation. Only these signals; the child's Landlock
  // scope keeps even those from reaching any process outside it.
  b.addPolicyOnSyscall('tgkill', ruleOf([{ arg2: FATAL_SIGNALS }]));
  extend?.(b);
  return b.build();
}
