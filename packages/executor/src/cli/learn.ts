// learn.ts: `sbx learn [options] -- CMD [ARGS]`: runs CMD under a learning policy and writes a
// policy file that allows what it did (docs/policy-guide.md "Learning a policy").
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { LearnError, learnPolicyFile, verifyPolicyFile } from '../learn/learn.js';
import type { LearnOptions, LearnReport } from '../learn/learn.js';
import { defaultView, withoutView } from '../learn/view.js';
import { defaultPolicy } from './default-policy.js';
import { PolicyError } from '../policy/errors.js';
import { formatPolicyFile } from '../learn/format.js';
import type { PolicyFile } from '../policy-file/policy-file.js';
import { ExitCode } from './exit-codes.js';
import {
  SANDBOX_OPTIONS,
  UsageError,
  checkLandlockFlag,
  executorFor,
  exitCodeFor,
  parseAllow,
  parseEnv,
  parseErrno,
  parseInteger,
  parseLimits,
  parseMount,
  parseNet,
  parseTmpfs,
} from './run.js';
import { guardTerminal } from './terminal-guard.js';

export const LEARN_HELP = `Usage: sbx learn [options] -- CMD [ARGS...]

Runs CMD in the sandbox (the same namespaces, file view and limits as sbx run) under a learning
policy: every syscall outside a small base set goes to the monitor, which lets it run and records
it with the arguments that matter (socket families and types, ioctl commands, mmap/mprotect
protections, clone flags, open flags, fcntl commands, prctl options). Then it writes a policy
file that allows exactly that: whole syscalls, argument rules (allowWhen) where they narrow,
presets where they fit, and the file view of the run. Learning is not a security boundary for
syscalls (they all run); namespaces, the file view, limits and sbx's always-on denials still hold.

Options:
  -o, --output FILE     write the policy to FILE (default: stdout; CMD's stdout then goes to stderr)
  --runs N              run CMD N times and merge what they did (default 1)
  --merge FILE          start from the policy file FILE and extend it: its rules stay, its file
                        view and network are the runs'; the output is FILE plus what was learned
  --verify              run CMD once more under the written policy, enforcing, and report OK or
                        the first violation (exit 159). The verify run reads the same stdin the
                        learning runs read (sbx learn reads its stdin once, unless it is a
                        terminal, and gives each run a copy); a verify run that exits non-zero
                        fails the verify (exit 1)
  --verify-any-exit     with --verify: any exit code of the verify run is OK (only a violation,
                        a timeout or a signal fails it)
  --without-view        write the syscall rules and the network only, no file view (view,
                        files, directories, tmpfs, librariesFor): for a caller that keeps its own
                        view (the runs still use sbx run's view and the --mount/--tmpfs flags)
  --allow, --errno, --mount, --tmpfs, --net, --env, --cwd, --walltime, --rlimit-as,
  --rlimit-fsize, --rlimit-nofile, --rlimit-cpu, --rlimit-nproc, --landlock
                        as for sbx run (sbx run --help); --allow and --errno go into the policy,
                        --mount, --tmpfs and --net into its file view and network (not with --merge)

Exit code: 0 when a policy was written (and verified, with --verify); 159 verify found a
violation; 1 the verify run exited non-zero (without --verify-any-exit); a learning run that did
not end normally exits as sbx run would (159 for a syscall sbx always denies, 124 timeout, 126
setup error...) and writes nothing; 125 sbx failed; 2 bad usage.`;

const options = {
  ...SANDBOX_OPTIONS,
  output: { type: 'string', short: 'o' },
  runs: { type: 'string' },
  merge: { type: 'string' },
  verify: { type: 'boolean' },
  'verify-any-exit': { type: 'boolean' },
  'without-view': { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

function say(msg: string): void {
  process.stderr.write(`sbx learn: ${msg}\n`);
}

export async function learn(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  if (values.help) {
    console.log(LEARN_HELP);
    return 0;
  }
  if (positionals.length === 0) throw new UsageError('no command given (sbx learn [options] -- CMD [ARGS...])');
  checkLandlockFlag(values);
  const runs = values.runs === undefined ? 1 : parseInteger('--runs', values.runs);
  if (runs < 1 || runs > 1000) throw new UsageError(`--runs must be 1..1000, got ${values.runs}`);
  const viewFlags = (values.mount?.length ?? 0) + (values.tmpfs?.length ?? 0) + (values.net?.length ?? 0);
  if (values.merge !== undefined && viewFlags > 0)
    throw new UsageError(
      '--mount, --tmpfs and --net do not go with --merge (the merged file holds the view and network)',
    );
  const [cmd, ...args] = positionals as [string, ...string[]];

  if (values['verify-any-exit'] && !values.verify) throw new UsageError('--verify-any-exit goes with --verify');
  const limits = parseLimits(values);
  const env = parseEnv(values);

  // CMD as sbx run finds it: in the sandbox's view (the flags' mounts included), else on the host.
  let binary: string;
  let runArgv: string[];
  try {
    const viewOnly = defaultPolicy(null, {
      allow: [],
      errno: [],
      mounts: (values.mount ?? []).map(parseMount),
      tmpfs: (values.tmpfs ?? []).map(parseTmpfs),
      network: parseNet([]),
    });
    const ex = executorFor(cmd, args, { env }, viewOnly);
    binary = ex.path;
    runArgv = [...ex.argv];
  } catch (err) {
    if (err instanceof PolicyError) throw new UsageError(err.message);
    say((err as Error).message);
    return ExitCode.SETUP;
  }
  let base: PolicyFile | string;
  if (values.merge !== undefined) base = values.merge;
  else {
    const net = parseNet(values.net ?? []);
    if (net.dns.length)
      throw new UsageError(
        '--net dns= is not supported by sbx learn (the generated resolv.conf would not outlive the run); use allow= rules',
      );
    base = defaultView(binary, {
      mounts: (values.mount ?? []).map(parseMount),
      tmpfs: (values.tmpfs ?? []).map(parseTmpfs),
      network: net,
    });
  }
  // --allow and --errno: written into the policy (and in force while learning).
  const allow = parseAllow(values);
  const errno = parseErrno(values);
  if (allow.length || errno.length) {
    const { readPolicyFile } = await import('../policy-file/policy-file.js');
    const doc = typeof base === 'string' ? readPolicyFileOrUsage(readPolicyFile, base) : { ...base };
    doc.allow = [...new Set([...(doc.allow ?? []), ...allow])];
    if (errno.length) doc.errno = { ...(doc.errno ?? {}), ...Object.fromEntries(errno) };
    base = doc;
  }

  const toStdout = values.output === undefined;
  const learnOptions: LearnOptions = {
    path: binary,
    argv: runArgv,
    env,
    cwd: values.cwd ?? '/',
    limits,
    landlock: values.landlock === 'off' ? 'off' : 'auto',
    base,
    runs,
  };
  // Every run (learning and verify) reads the same input: sbx learn's stdin, read once.
  const input = process.stdin.isTTY ? null : await readStdin();
  learnOptions.stdio = [input ? 'pipe' : 'inherit', toStdout ? 'pipe' : 'inherit', 'inherit'];
  // The sandbox opens its pipes as it starts, synchronously within run(); the microtask runs right after.
  learnOptions.onSandbox = (s) =>
    queueMicrotask(() => {
      // The policy owns stdout: the program's stdout goes to stderr.
      if (toStdout) s.stdout?.pipe(process.stderr, { end: false });
      if (input && s.stdin) {
        s.stdin.on('error', () => {}); // a program that exits without reading all of it
        s.stdin.end(input);
      }
    });

  let report: LearnReport;
  const terminal = guardTerminal(); // the runs have the caller's terminal as stdio (cli/terminal-guard.ts)
  try {
    report = await learnPolicyFile(learnOptions);
  } catch (err) {
    if (err instanceof LearnError) {
      if (err.code === 'BAD_BASE') throw new UsageError(err.message);
      say(err.message);
      return err.result && err.result.status !== 'OK' ? exitCodeFor(err.result) : ExitCode.INTERNAL;
    }
    throw err;
  } finally {
    terminal.restore();
  }
  for (const p of report.problems) say(`warning: ${p}`);
  report.results.forEach((r, i) => {
    say(`run ${i + 1}/${runs}: ${r.toString()}`);
  });
  const allowed = (report.doc.allow?.length ?? 0) + Object.keys(report.doc.allowWhen ?? {}).length;
  const text = formatPolicyFile(values['without-view'] ? withoutView(report.doc) : report.doc);
  if (toStdout) process.stdout.write(text);
  else writeFileSync(values.output!, text);
  say(
    `${toStdout ? 'policy written to stdout' : `wrote ${values.output}`}: ${report.facts.syscalls.length} syscalls seen, ` +
      `${allowed} names allowed (${Object.keys(report.doc.allowWhen ?? {}).length} with argument rules)${report.doc.presets?.length ? ` plus presets ${report.doc.presets.join(', ')}` : ''}`,
  );

  if (!values.verify) return 0;
  const verified = await verifyPolicyFile(report.doc, learnOptions).finally(() => terminal.restore());
  if (verified.status === 'OK' && (verified.exitCode === 0 || values['verify-any-exit'])) {
    say(`verify: OK (${verified.toString()})`);
    return 0;
  }
  if (verified.status === 'OK') {
    const learned = report.results.map((r) => r.exitCode).join(', ');
    say(
      `verify: FAILED: the program exited ${verified.exitCode} under the learned policy (the learning run${runs > 1 ? 's' : ''} exited ${learned}); --verify-any-exit accepts any exit code`,
    );
    return 1;
  }
  say(`verify: ${verified.status}: ${verified.reason}`);
  return exitCodeFor(verified);
}

/** All of stdin (a pipe or a file), at most MAX_STDIN bytes. */
async function readStdin(): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of process.stdin as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_STDIN)
      throw new UsageError(
        `stdin is larger than ${MAX_STDIN / 2 ** 20} MiB; sbx learn keeps it in memory to give every run the same input`,
      );
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

const MAX_STDIN = 256 * 2 ** 20;

function readPolicyFileOrUsage(read: (p: string) => { doc: PolicyFile }, path: string): PolicyFile {
  try {
    return { ...read(path).doc };
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}
