// run.ts: `sbx run [options] -- CMD [ARGS]`: runs any program in a sandbox with a default policy
// for ordinary dynamically linked command-line programs. Stdio passes through.
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as os from 'node:os';
import { parseArgs } from 'node:util';
import { Executor, type ExecutorOptions } from '../sandbox/executor.js';
import type { LimitsOptions } from '../sandbox/limits.js';
import { Sandbox } from '../sandbox/sandbox.js';
import { formatStackTrace } from '../sandbox/stack-trace.js';
import { formatTimeline } from '../sandbox/timeline.js';
import { ForkServer } from '../forkserver/global.js';
import { setSpawnPool } from '../forkserver/spawn-pool.js';
import { PolicyError } from '../policy/errors.js';
import type { Result } from '../sandbox/result.js';
import { ExitCode } from './exit-codes.js';
import {
  defaultPolicy,
  filePolicy,
  needsLibraries,
  type RunNetwork,
  type RunPolicyOptions,
  type RunViewOptions,
} from './default-policy.js';
import { DEFAULT_SANDBOX_PATH, standardEnvironment } from '../view/standard-view.js';
import type { Policy } from '../policy/policy.js';
import { parseIpAddress, splitCidrPort } from '../policy/network.js';
import { SbxError } from '@sbx/client';
import { guardTerminal } from './terminal-guard.js';

/**
 * The processes (threads included) the sandbox's user may have at once under sbx run and sbx
 * learn: room for make -j, compilers, thread pools; a bound on a fork bomb.
 */
export const DEFAULT_RUN_NPROC = 1024;

export const RUN_HELP = `Usage: sbx run [options] -- CMD [ARGS...]

Runs CMD in a sandbox: new user, mount, pid, net, ipc, uts and cgroup namespaces; a read-only
view of /usr, /lib*, /bin, /sbin and the /etc files programs read (never the whole /etc), a
generated /etc/passwd and /etc/group naming the sandbox's user "sandbox" (uid 1000 inside, home
/tmp), /dev, /proc and a tmpfs /tmp; a seccomp policy for ordinary command-line programs
(docs/policy-guide.md "The command-line default"); no network. Stdio passes through.
CMD is what the sandbox sees: a path in its view (--mount /opt/app:/app -- /app/bin/tool) or a
bare name found through the sandbox's PATH in its view; a path that is not in the view but is a
host file runs from the host with its libraries (as before). #! scripts work.
With --isolation landlock (hosts that forbid namespaces, e.g. inside a container): no namespace;
the same paths allowed by Landlock rules (nothing else of the host is readable or writable),
a private scratch directory as TMPDIR instead of the tmpfs /tmp, signals and abstract sockets
kept inside, the same seccomp policy, every connect decided by the monitor, an unprivileged
user when sbx runs as root (docs/security.md says what this mode does not hide).

Options:
  --policy FILE                  use the policy file FILE instead of the default policy (format:
                                 docs/policy-guide.md "Policy files"; check it with sbx policy
                                 check FILE). The file is the whole policy, plus CMD's interpreter
                                 and libraries unless the file lists librariesFor or mounts the
                                 directory CMD is in; --allow, --errno, --mount, --tmpfs and
                                 --net still add to it (no automatic /tmp, /proc or /etc files)
  --allow SYSCALL[,SYSCALL...]   also allow these syscalls (repeatable)
  --errno SYSCALL=ERRNO          make SYSCALL fail with ERRNO (e.g. uname=EPERM; repeatable)
  --mount SRC[:DST][:rw]         bind SRC at DST (default SRC), read-only unless :rw (repeatable)
  --tmpfs DST[:SIZE]             a tmpfs at DST (SIZE like 64M; repeatable)
  --walltime SEC                 wall-time limit in seconds (default 120; 0 = none)
  --rlimit-as BYTES              address-space limit (K, M, G suffixes)
  --rlimit-fsize BYTES           largest file the program may write
  --rlimit-nofile N              open-file limit
  --rlimit-cpu SEC               CPU-time limit
  --rlimit-nproc N               processes and threads the sandbox's user may have at once
                                 (default ${DEFAULT_RUN_NPROC}; counted in the sandbox's own user
                                 namespace, so it bounds a fork bomb without touching the host)
  --net none|host                no network (default) or the host's network (not recommended)
  --net allow=CIDR[:PORT]        network rules (repeatable): connect to these networks only; the
  --net deny=CIDR[:PORT]         monitor connects from the host's namespace (127.0.0.1 is the
  --net dns=IP                   host's loopback); deny wins over allow; dns=IP allows port 53 to
  --net unix=PATH                that resolver even in a denied network and binds a resolv.conf
                                 naming it; unix=PATH allows connecting to that unix socket.
                                 IPv6 with a port: allow=[2001:db8::/32]:443
  --env K=V                      environment variable (repeatable; default PATH, and HOME=/tmp,
                                 USER=LOGNAME=sandbox with namespaces isolation)
  --cwd DIR                      working directory inside the sandbox (default /)
  --landlock auto|off            Landlock rules and scopes under the mount tree where the kernel
                                 has Landlock (default auto)
  --isolation namespaces|landlock
                                 namespaces (default), or landlock: no namespace at all (needs
                                 Landlock ABI 6, Linux 6.12+). Never chosen silently: where the
                                 host forbids namespaces sbx run fails and names this flag.
                                 In landlock mode --mount SRC only allows SRC (SRC:DST is an
                                 error), and --tmpfs takes /tmp only
  --sandbox-user UID[:GID]       host user the sandboxee runs as when sbx runs as root (default
                                 nobody, 65534:65534)
  --result-json FILE             write the Result as JSON to FILE
  --trace                        print the timeline of the sandbox (every stage, µs) to stderr
  -q, --quiet                    do not print the Result line when the run is not OK

Exit code: CMD's own when it exits normally; 124 timeout, 126 setup error, 137 killed,
159 policy violation, 128+N killed by signal N, 125 sbx failed, 2 bad usage.`;

/** The options that shape a sandbox, shared by sbx run and sbx learn. */
export const SANDBOX_OPTIONS = {
  allow: { type: 'string', multiple: true },
  errno: { type: 'string', multiple: true },
  mount: { type: 'string', multiple: true },
  tmpfs: { type: 'string', multiple: true },
  walltime: { type: 'string' },
  'rlimit-as': { type: 'string' },
  'rlimit-fsize': { type: 'string' },
  'rlimit-nofile': { type: 'string' },
  'rlimit-cpu': { type: 'string' },
  'rlimit-nproc': { type: 'string' },
  net: { type: 'string', multiple: true },
  env: { type: 'string', multiple: true },
  cwd: { type: 'string' },
  landlock: { type: 'string' },
} as const;

const options = {
  ...SANDBOX_OPTIONS,
  policy: { type: 'string' },
  'result-json': { type: 'string' },
  trace: { type: 'boolean' },
  isolation: { type: 'string' },
  'sandbox-user': { type: 'string' },
  quiet: { type: 'boolean', short: 'q' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** What SANDBOX_OPTIONS hold once parsed. */
type SandboxValues = {
  [K in keyof typeof SANDBOX_OPTIONS]?: (typeof SANDBOX_OPTIONS)[K] extends { multiple: true } ? string[] : string;
};

/** --landlock auto|off. */
export function checkLandlockFlag(values: SandboxValues): void {
  if (values.landlock !== undefined && values.landlock !== 'auto' && values.landlock !== 'off') {
    throw new UsageError(`--landlock must be auto or off, got ${JSON.stringify(values.landlock)}`);
  }
}

/** --walltime and --rlimit-*. */
export function parseLimits(values: SandboxValues): LimitsOptions {
  const limits: LimitsOptions = {};
  if (values.walltime !== undefined) limits.walltime = parseNumber('--walltime', values.walltime);
  if (values['rlimit-as'] !== undefined) limits.rlimitAs = parseBytes('--rlimit-as', values['rlimit-as']);
  if (values['rlimit-fsize'] !== undefined) limits.rlimitFsize = parseBytes('--rlimit-fsize', values['rlimit-fsize']);
  if (values['rlimit-nofile'] !== undefined)
    limits.rlimitNofile = parseInteger('--rlimit-nofile', values['rlimit-nofile']);
  if (values['rlimit-cpu'] !== undefined) limits.rlimitCpu = parseInteger('--rlimit-cpu', values['rlimit-cpu']);
  limits.rlimitNproc =
    values['rlimit-nproc'] !== undefined ? parseInteger('--rlimit-nproc', values['rlimit-nproc']) : DEFAULT_RUN_NPROC;
  if (limits.rlimitNproc === 0)
    throw new UsageError('--rlimit-nproc must be at least 1 (the program itself is a process)');
  return limits;
}

/** --env K=V over the default PATH (and, with namespaces isolation, the standard view's HOME and USER). */
export function parseEnv(
  values: SandboxValues,
  isolation: 'namespaces' | 'landlock' = 'namespaces',
): Record<string, string> {
  const env: Record<string, string> =
    isolation === 'namespaces' ? standardEnvironment() : { PATH: DEFAULT_SANDBOX_PATH };
  for (const kv of values.env ?? []) {
    const eq = kv.indexOf('=');
    if (eq <= 0) throw new UsageError(`--env expects K=V, got "${kv}"`);
    env[kv.slice(0, eq)] = kv.slice(eq + 1);
  }
  return env;
}

/** --allow A,B (repeatable). */
export function parseAllow(values: SandboxValues): string[] {
  return (values.allow ?? [])
    .flatMap((s) => s.split(','))
    .map((s) => s.trim())
    .filter(Boolean);
}

/** --errno SYSCALL=ERRNO (repeatable). */
export function parseErrno(values: SandboxValues): Array<[string, string]> {
  return (values.errno ?? []).map((s) => {
    const eq = s.indexOf('=');
    if (eq <= 0) throw new UsageError(`--errno expects SYSCALL=ERRNO, got "${s}"`);
    return [s.slice(0, eq), s.slice(eq + 1)];
  });
}

export class UsageError extends SbxError {
  declare readonly code: 'USAGE';
  constructor(message: string) {
    super('USAGE', message);
  }
}

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  if (values.help) {
    console.log(RUN_HELP);
    return 0;
  }
  if (positionals.length === 0) throw new UsageError('no command given (sbx run [options] -- CMD [ARGS...])');
  checkLandlockFlag(values);
  if (values.isolation !== undefined && values.isolation !== 'namespaces' && values.isolation !== 'landlock') {
    throw new UsageError(`--isolation must be namespaces or landlock, got ${JSON.stringify(values.isolation)}`);
  }
  if (values.isolation === 'landlock' && values.landlock === 'off')
    throw new UsageError('--isolation landlock cannot be combined with --landlock off');
  const [cmd, ...args] = positionals as [string, ...string[]];

  const limits = parseLimits(values);
  const env = parseEnv(values, values.isolation === 'landlock' ? 'landlock' : 'namespaces');

  const policyOptions: RunPolicyOptions = {
    allow: parseAllow(values),
    errno: parseErrno(values),
    mounts: (values.mount ?? []).map(parseMount),
    tmpfs: (values.tmpfs ?? []).map(parseTmpfs),
    network: parseNet(values.net ?? []),
    ...(values.policy !== undefined ? { policyFile: values.policy } : {}),
  };
  if (values.isolation === 'landlock') checkLandlockFlags(policyOptions);
  // dns=IP: a resolv.conf naming the resolvers, bound at /etc/resolv.conf for the run.
  let resolvDir: string | null = null;
  if (policyOptions.network.dns.length) {
    resolvDir = mkdtempSync(join(tmpdir(), 'sbx-resolv-'));
    chmodSync(resolvDir, 0o755); // the sandbox's mount setup runs as its own (mapped) uid
    policyOptions.network.resolvConf = join(resolvDir, 'resolv.conf');
    writeFileSync(
      policyOptions.network.resolvConf,
      policyOptions.network.dns.map((ip) => `nameserver ${ip}\n`).join(''),
      { mode: 0o644 },
    );
  }
  try {
    return await runWith(cmd, args, env, limits, policyOptions, values);
  } finally {
    if (resolvDir) rmSync(resolvDir, { recursive: true, force: true });
  }
}

async function runWith(
  cmd: string,
  args: string[],
  env: Record<string, string>,
  limits: LimitsOptions,
  policyOptions: RunPolicyOptions,
  values: {
    cwd?: string;
    'result-json'?: string;
    trace?: boolean;
    quiet?: boolean;
    landlock?: string;
    isolation?: string;
    'sandbox-user'?: string;
  },
): Promise<number> {
  const landlock = values.landlock === 'off' ? 'off' : 'auto';
  const isolation = values.isolation === 'landlock' ? 'landlock' : 'namespaces';
  // The forkserver starts while the policy is built.
  ForkServer.shared();
  const policyFileModule =
    policyOptions.policyFile !== undefined ? await import('../policy-file/policy-file.js') : undefined;
  const view: RunViewOptions = { isolation };
  const build = (binary: string | null): Policy => {
    try {
      return policyFileModule
        ? filePolicy(binary, policyOptions, policyFileModule, view)
        : defaultPolicy(binary, policyOptions, view);
    } catch (err) {
      // Every problem here comes from the flags (--allow, --errno, --mount, --policy...): a usage error.
      if (err instanceof PolicyError) throw new UsageError(err.message);
      throw err;
    }
  };
  // CMD as the sandbox sees it: resolved in the view first.
  let policy = build(null);
  let executor: Executor;
  try {
    const sandboxUser = values['sandbox-user'] !== undefined ? parseSandboxUser(values['sandbox-user']) : undefined;
    const options = {
      env,
      cwd: values.cwd ?? '/',
      limits,
      landlock,
      isolation,
      ...(sandboxUser ? { sandboxUser } : {}),
      ...(values.trace ? { trace: true } : {}),
    } as const;
    executor = executorFor(cmd, args, options, policy);
  } catch (err) {
    const e = err as Error & { code?: string };
    if (e.code === 'BINARY_NOT_FOUND' || e.code === 'BINARY_NOT_EXECUTABLE') {
      console.error(`sbx run: ${e.message}`);
      return ExitCode.SETUP;
    }
    if (err instanceof TypeError) throw new UsageError(e.message);
    throw err;
  }
  // A binary outside the view's directories brings its interpreter and libraries (filePolicy and
  // defaultPolicy decide which views show it).
  if (policyFileModule || needsLibraries(executor.path)) policy = build(executor.path);
  // One sandbox per process: a spawn pool (even one asked for by SBX_SPAWN_POOL) would only
  // prepare slots that nobody uses. The pool pays off in a long-lived executor process.
  setSpawnPool({ size: 0 });
  const sandbox = new Sandbox(executor, policy);

  // Ctrl-C or a kill of sbx ends the sandbox too.
  const onSignal = () => sandbox.kill();
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('SIGHUP', onSignal);
  let result: Result;
  const terminal = guardTerminal();
  try {
    result = await sandbox.run();
  } finally {
    terminal.restore();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    process.off('SIGHUP', onSignal);
  }

  if (values.trace) process.stderr.write(`sbx: trace\n${formatTimeline(sandbox.timeline ?? [])}\n`);
  if (values['result-json']) writeFileSync(values['result-json'], `${JSON.stringify(result.toJSON(), null, 2)}\n`);
  if (result.status !== 'OK' && !values.quiet) {
    console.error(`sbx: ${result.toString()}`);
    if (result.stackTrace) console.error(formatStackTrace(result.stackTrace));
  }
  return exitCodeFor(result);
}

/**
 * CMD in the sandbox's view (a path inside it, or a bare name through the sandbox's PATH); a path
 * that is not in the view but names a host file runs from the host, as sbx run always allowed.
 */
export function executorFor(cmd: string, args: string[], options: ExecutorOptions, view: Policy): Executor {
  try {
    return new Executor(cmd, [cmd, ...args], { ...options, resolveInView: view });
  } catch (err) {
    if ((err as { code?: string }).code !== 'BINARY_NOT_FOUND' || !cmd.includes('/')) throw err;
    try {
      return new Executor(cmd, [cmd, ...args], options);
    } catch {
      throw err;
    }
  }
}

export function exitCodeFor(r: Result): number {
  switch (r.status) {
    case 'OK':
      return r.exitCode ?? 0;
    case 'SIGNALED':
      return ExitCode.SIGNAL_BASE + (typeof r.signal === 'number' ? r.signal : signalNumber(r.signal));
    case 'TIMEOUT':
      return ExitCode.TIMEOUT;
    case 'VIOLATION':
      return ExitCode.VIOLATION;
    case 'EXTERNAL_KILL':
      return ExitCode.EXTERNAL_KILL;
    case 'SETUP_ERROR':
      return ExitCode.SETUP;
    default:
      return ExitCode.INTERNAL;
  }
}

function signalNumber(name: string | undefined): number {
  return (name && (os.constants.signals as Record<string, number>)[name]) || 0;
}

export function parseBytes(flag: string, s: string): number {
  const m = /^(\d+)\s*([kKmMgGtT]?)[bB]?$/.exec(s.trim());
  if (!m) throw new UsageError(`${flag} expects a size like 4096, 64K, 512M or 2G, got "${s}"`);
  const mult = { '': 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40 }[m[2]!.toLowerCase()]!;
  const v = Number(m[1]) * mult;
  if (!Number.isSafeInteger(v)) throw new UsageError(`${flag}: ${s} is too large`);
  return v;
}

export function parseInteger(flag: string, s: string): number {
  if (!/^\d+$/.test(s.trim())) throw new UsageError(`${flag} expects a non-negative integer, got "${s}"`);
  return Number(s);
}

export function parseNumber(flag: string, s: string): number {
  const v = Number(s);
  if (s.trim() === '' || !Number.isFinite(v) || v < 0)
    throw new UsageError(`${flag} expects a non-negative number of seconds, got "${s}"`);
  return v;
}

export function parseMount(s: string): { outside: string; inside: string; writable: boolean } {
  const parts = s.split(':');
  let writable = false;
  if (parts.length > 1 && (parts[parts.length - 1] === 'rw' || parts[parts.length - 1] === 'ro'))
    writable = parts.pop() === 'rw';
  if (parts.length > 2 || !parts[0]) throw new UsageError(`--mount expects SRC[:DST][:rw], got "${s}"`);
  const outside = parts[0];
  const inside = parts[1] ?? outside;
  if (!outside.startsWith('/') || !inside.startsWith('/'))
    throw new UsageError(`--mount paths must be absolute, got "${s}"`);
  return { outside, inside, writable };
}

/** Landlock isolation has no mount namespace: what the flags ask must exist at its own path. */
function checkLandlockFlags(o: RunPolicyOptions): void {
  for (const m of o.mounts) {
    if (m.outside !== m.inside)
      throw new UsageError(
        `--mount ${m.outside}:${m.inside}: --isolation landlock has no mount namespace, so a path cannot appear elsewhere; use --mount ${m.outside} to allow it at its own path`,
      );
  }
  for (const t of o.tmpfs) {
    if (t.inside !== '/tmp')
      throw new UsageError(
        `--tmpfs ${t.inside}: --isolation landlock cannot mount a tmpfs; only /tmp is provided (a private scratch directory, passed as TMPDIR); use --mount DIR:rw for a writable host directory`,
      );
  }
  if (o.network.dns.length)
    throw new UsageError(
      `--net dns=: --isolation landlock cannot put a resolv.conf at /etc/resolv.conf (no mount namespace); the host's /etc/resolv.conf is what the program reads`,
    );
}

function parseSandboxUser(s: string): { uid: number; gid: number } {
  const m = /^(\d+)(?::(\d+))?$/.exec(s.trim());
  if (!m) throw new UsageError(`--sandbox-user expects UID[:GID] (numbers), got "${s}"`);
  const uid = Number(m[1]);
  return { uid, gid: m[2] !== undefined ? Number(m[2]) : uid };
}

export function parseTmpfs(s: string): { inside: string; sizeBytes: number } {
  const [inside, size] = s.split(':');
  if (!inside?.startsWith('/')) throw new UsageError(`--tmpfs expects an absolute DST[:SIZE], got "${s}"`);
  return { inside, sizeBytes: size ? parseBytes('--tmpfs', size) : 64 * 2 ** 20 };
}

/** --net values: none, host, or rules (allow=, deny=, dns=, unix=), which exclude the other two. */
export function parseNet(list: string[]): RunNetwork {
  const net: RunNetwork = { mode: 'none', allow: [], deny: [], dns: [], unix: [] };
  let plain: 'none' | 'host' | null = null;
  for (const n of list) {
    const eq = n.indexOf('=');
    const key = eq < 0 ? n : n.slice(0, eq);
    const value = eq < 0 ? '' : n.slice(eq + 1);
    if (n === 'none' || n === 'host') plain = n;
    else if ((key === 'allow' || key === 'deny') && value) net[key].push(parseCidrPort(n, value));
    else if (key === 'dns' && value) {
      if (!parseIpAddress(value)) throw new UsageError(`--net ${n}: "${value}" is not an IP address`);
      net.dns.push(value);
    } else if (key === 'unix' && value) net.unix.push(value);
    else
      throw new UsageError(
        `--net expects none or host, or rules: allow=CIDR[:PORT], deny=CIDR[:PORT], dns=IP, unix=PATH; got "${n}"`,
      );
  }
  const rules = net.allow.length + net.deny.length + net.dns.length + net.unix.length > 0;
  if (rules && plain) throw new UsageError(`--net ${plain} cannot be combined with allow=/deny=/dns=/unix= rules`);
  net.mode = rules ? 'rules' : (plain ?? 'none');
  return net;
}

/** "10.0.0.0/8", "10.0.0.0/8:443", "::1", "[2001:db8::/32]:443" -> [cidr, port]. */
function parseCidrPort(flag: string, v: string): [string, number] {
  const [cidr, port] = splitCidrPort(v);
  if (port && !/^\d{1,5}$/.test(port)) throw new UsageError(`--net ${flag}: the port must be a number, got "${port}"`);
  const p = port ? Number(port) : 0;
  if (p > 65535) throw new UsageError(`--net ${flag}: the port must be 0..65535`);
  return [cidr, p];
}
