// helpers.ts: shared bits of the integration tests.
import { readdirSync, existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

export const repoRoot = resolve(import.meta.dirname, '..');
export const nativeBuild = join(repoRoot, 'native', 'build');

/** A test program built from native/testcases. */
export function testcase(name: string): string {
  const p = join(nativeBuild, 'testcases', name);
  if (!existsSync(p)) throw new Error(`testcase ${name} is not built (${p}): run pnpm build`);
  return p;
}

/** Open fds of this process (to prove nothing leaks). */
export function openFdCount(): number {
  return readdirSync('/proc/self/fd').length;
}

/**
 * The fd count once it has come down to `limit`, or after `ms`: closes that libuv finishes on a
 * later turn of the event loop (a Comms watcher) are not leaks, and a real leak never comes down.
 */
export async function fdCountSettled(limit: number, ms = 2000): Promise<number> {
  const end = Date.now() + ms;
  let n = openFdCount();
  while (n > limit && Date.now() < end) {
    await new Promise((r) => setTimeout(r, 20));
    n = openFdCount();
  }
  return n;
}

/** Resolves after the event loop had a chance to run pending callbacks. */
export function tick(ms = 20): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

import { Executor, PolicyBuilder, Sandbox, type ExecutorOptions, type Policy, type Result } from '@sbx/executor';

/** A permissive policy for isolation tests: every syscall allowed except the always-on denials,
 *  on the usual read-only system view with /proc, /dev basics and a tmpfs /tmp. */
export function isolationPolicy(extra?: (b: PolicyBuilder) => void) {
  const b = new PolicyBuilder().defaultAction('allow');
  for (const d of ['/usr', '/bin', '/sbin', '/lib', '/lib64']) if (existsSync(d)) b.addDirectory(d);
  for (const f of ['/etc/ld.so.cache', '/etc/passwd', '/etc/group']) if (existsSync(f)) b.addFile(f);
  for (const f of ['/dev/null', '/dev/zero', '/dev/urandom']) b.addFile(f, { writable: true });
  b.addDirectory('/proc');
  b.addTmpfs('/tmp', { sizeBytes: 16 << 20 });
  extra?.(b);
  return b.build();
}

/** What a Node sandboxee needs in view: node and its libraries, the repo (@sbx/client and its
 *  addon), /proc, and /dev/null and /dev/urandom. */
export function addNodeView(b: PolicyBuilder): PolicyBuilder {
  b.addFile(process.execPath).addLibrariesForBinary(process.execPath).addDirectory(repoRoot).addDirectory('/proc');
  for (const f of ['/dev/null', '/dev/urandom']) b.addFile(f, { writable: true });
  return b;
}

/** What a Node forkserver (test/fixtures/fork-server.mjs) and its children need in view, and the
 *  children's syscalls (custom-fork suites). */
export function forkNodePolicy(extra?: (b: PolicyBuilder) => void) {
  const b = new PolicyBuilder().allowNodeRuntime({ threads: true, openFiles: true });
  addNodeView(b);
  b.addTmpfs('/tmp', { sizeBytes: 16 << 20 });
  b.allowSyscalls(['getppid']);
  extra?.(b);
  return b.build();
}

export interface Captured {
  result: Result;
  stdout: string;
  stderr: string;
}

/** Runs argv in a sandbox with stdout/stderr captured. */
export async function runCaptured(
  argv: string[],
  options: {
    policy?: ReturnType<typeof isolationPolicy>;
    executor?: ExecutorOptions;
    before?: (s: Sandbox, e: Executor) => void;
  } = {},
): Promise<Captured> {
  const executor = new Executor(argv[0]!, argv, { stdio: ['ignore', 'pipe', 'pipe'], ...options.executor });
  const sandbox = new Sandbox(executor, options.policy ?? isolationPolicy());
  options.before?.(sandbox, executor);
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  const resultP = sandbox.run();
  await sandbox.runAsync().catch(() => {});
  const done = Promise.all([
    sandbox.stdout ? collect(sandbox.stdout, out) : Promise.resolve(),
    sandbox.stderr ? collect(sandbox.stderr, err) : Promise.resolve(),
  ]);
  const result = await resultP;
  await done;
  return { result, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() };
}

/** Runs `s` (stdout piped) to its Result and its stdout's end: the pipe's last data can come
 *  after the Result (they travel on separate channels). */
export async function runWithStdout(s: Sandbox): Promise<{ result: Result; stdout: string }> {
  const out: Buffer[] = [];
  const ended = collect(s.stdout!, out);
  const result = await s.run();
  await ended;
  return { result, stdout: Buffer.concat(out).toString() };
}

function collect(stream: NodeJS.ReadableStream, into: Buffer[]): Promise<void> {
  return new Promise((resolve) => {
    stream.on('data', (d: Buffer) => into.push(d));
    stream.on('end', resolve);
    stream.on('error', () => resolve());
  });
}

/** Runs `node --input-type=module -e script` in sandbox-me-here mode (the script calls
 *  Client.sandboxMeHere() itself), from the repo, with a 30 s walltime. */
export function runNodeMeHere(script: string, policy: Policy): Promise<Captured> {
  return runCaptured([process.execPath, '--input-type=module', '-e', script], {
    policy,
    executor: {
      enableSandboxBeforeExec: false,
      cwd: repoRoot,
      env: { PATH: '/usr/bin:/bin' },
      limits: { walltime: 30 },
    },
  });
}

/** Runs a shell script in a sandbox. */
export function sh(script: string, options: Parameters<typeof runCaptured>[1] = {}): Promise<Captured> {
  return runCaptured(['/bin/sh', '-c', script], options);
}

/** Pids of every process whose cmdline contains `marker` (to prove nothing survives). */
export function processesWith(marker: string): number[] {
  const found: number[] = [];
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      if (readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(marker)) found.push(Number(p));
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

/** Always-on denials as [violations probe mode, syscall the Result names]: the probes in
 *  native/testcases/violations.c that every policy must stop. */
export const ALWAYS_DENIED_PROBES: ReadonlyArray<[string, string]> = [
  ['ptrace', 'ptrace'],
  ['bpf', 'bpf'],
  ['unshare-user', 'unshare'],
  ['clone-newuser', 'clone'],
  ['keyctl', 'keyctl'],
  ['add_key', 'add_key'],
  ['perf_event_open', 'perf_event_open'],
  ['userfaultfd', 'userfaultfd'],
  ['open_by_handle_at', 'open_by_handle_at'],
  ['mount', 'mount'],
  ['seccomp-listener', 'seccomp'],
];
