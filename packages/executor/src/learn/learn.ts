/**
 * Learning a policy (`sbx learn`, docs/policy-guide.md "Learning a policy"). The program runs in
 * the sandbox (same namespaces, mount view, limits) under a learning filter: the base set and
 * the base file's rules as written, the always-on denials as violations, and every other syscall
 * notified to the monitor, which lets it continue and records the syscall with the argument
 * facts of ARG_FACTS taken from the notification's registers. Learning is not a security
 * boundary for the syscalls themselves (they all run); the namespaces, the mount view, Landlock,
 * the limits and the always-on denials still hold.
 */
import { Executor } from '../sandbox/executor.js';
import type { ExecutorOptions } from '../sandbox/executor.js';
import { applyPolicyFile, loadPolicyFile, readPolicyFile } from '../policy-file/policy-file.js';
import type { PolicyFile } from '../policy-file/policy-file.js';
import { PolicyBuilder } from '../policy/policy-builder.js';
import { PolicyError } from '../policy/errors.js';
import type { Policy } from '../policy/policy.js';
import { syscallNumber } from '../policy/syscalls.js';
import type { Result } from '../sandbox/result.js';
import { Sandbox } from '../sandbox/sandbox.js';
import { BASE_SET, MAX_FACTS, NETWORK_DECIDED } from './facts.js';
import { LearnedFacts } from './facts-set.js';
import { synthesize } from './synthesize.js';
import { encodeLearnTable } from './table.js';
import { defaultView } from './view.js';
import { SbxError } from '@sbx/client';

export interface LearnOptions extends ExecutorOptions {
  /** The program (a path, or a name looked up in PATH). */
  path: string;
  /** Its argv (default [path]). */
  argv?: string[];
  /**
   * A policy file (path or object) to start from and extend: its rules stay, its filesystem view
   * and network are the runs'. Default: `sbx run`'s default view with no syscall rules.
   */
  base?: PolicyFile | string;
  /** Runs to learn from (their facts are merged). Default 1. */
  runs?: number;
  /** @internal a hook given each Sandbox before it starts (the CLI pipes stdout with it). */
  onSandbox?: (sandbox: Sandbox) => void;
}

export type LearnErrorCode = 'RUN_FAILED' | 'TOO_MANY_FACTS' | 'BAD_BASE';

/** A learning run that cannot give a policy: the Result of the run is attached when there is one. */
export class LearnError extends SbxError {
  declare readonly code: LearnErrorCode;
  readonly result: Result | undefined;
  constructor(code: LearnErrorCode, message: string, result?: Result) {
    super(code, message);
    this.result = result;
  }
}

export interface LearnReport {
  /** The learned policy file: the base extended with what the runs used. */
  readonly doc: PolicyFile;
  /** What the runs saw. */
  readonly facts: LearnedFacts;
  /** The Result of each run. */
  readonly results: readonly Result[];
  /** Facts that could not be written (see synthesize.ts). */
  readonly problems: readonly string[];
}

const EXECUTOR_KEYS = ['env', 'cwd', 'limits', 'stdio', 'hostname', 'cgroup', 'monitor', 'landlock'] as const;

function executorOptions(o: LearnOptions): ExecutorOptions {
  const out: Record<string, unknown> = {};
  for (const k of EXECUTOR_KEYS) if (o[k] !== undefined) out[k] = o[k];
  if (o.enableSandboxBeforeExec === false)
    throw new TypeError(
      'learnPolicy: learning runs in sandbox-before-exec mode (enableSandboxBeforeExec must not be false)',
    );
  return out as ExecutorOptions;
}

/** The base as a validated policy file object. */
function baseDoc(o: LearnOptions, binary: string): PolicyFile {
  if (o.base === undefined) return defaultView(binary);
  try {
    return readPolicyFile(o.base).doc;
  } catch (err) {
    if (err instanceof PolicyError) throw new LearnError('BAD_BASE', `the base policy: ${err.message}`);
    throw err;
  }
}

/**
 * The file's rules and view in a builder, as `sbx run --policy FILE` builds it: plus the binary's
 * interpreter and libraries unless the file lists librariesFor or binds the directory it is in.
 */
function builderFor(doc: PolicyFile, binary: string): PolicyBuilder {
  const b = new PolicyBuilder();
  const problems = applyPolicyFile(doc, b);
  if (problems.length) throw new PolicyError('INVALID_POLICY', problems);
  const dirs = (doc.directories ?? []).map((d) => d.inside ?? d.path);
  if (doc.librariesFor === undefined && !dirs.some((d) => binary.startsWith(d.endsWith('/') ? d : `${d}/`)))
    b.addLibrariesForBinary(binary);
  return b;
}

/** The learning policy: the base's rules and view, the base set, everything else notified. */
export function learningPolicy(doc: PolicyFile, binary: string): Policy {
  const { default: _ignored, ...rules } = doc;
  const b = builderFor(rules, binary);
  b.allowSyscalls(BASE_SET.filter((n) => syscallNumber(b.arch, n) !== undefined));
  // Network rules: the monitor decides connects and addressed sends, as it will when enforcing.
  if (doc.network?.mode === 'rules') b.allowSyscalls([...NETWORK_DECIDED]);
  return b.defaultAction('notify').build();
}

/** The enforcing policy a learned file means (as `sbx run --policy FILE` builds it). */
export function enforcingPolicy(doc: PolicyFile, binary: string): Policy {
  return builderFor(doc, binary).build();
}

function checkRuns(runs: unknown): number {
  if (runs === undefined) return 1;
  if (typeof runs !== 'number' || !Number.isInteger(runs) || runs < 1 || runs > 1000)
    throw new TypeError(`learnPolicy: runs must be an integer 1..1000, got ${String(runs)}`);
  return runs;
}

/** Runs the program once under a learning policy and adds what it did to `facts`. */
async function learnOnce(o: LearnOptions, policy: Policy, facts: LearnedFacts): Promise<Result> {
  const ex = new Executor(o.path, o.argv ?? [o.path], executorOptions(o));
  const sandbox = new Sandbox(ex, policy);
  let overflow = false;
  sandbox.learning = {
    table: (filter) => encodeLearnTable(filter, policy.arch, MAX_FACTS),
    onEvent: (e) => {
      if (e.type === 'learn') facts.addFromRegisters(e.nr, e.args);
      else overflow = true;
    },
  };
  o.onSandbox?.(sandbox);
  const result = await sandbox.run();
  if (overflow)
    throw new LearnError(
      'TOO_MANY_FACTS',
      `the program produced more than ${MAX_FACTS} distinct syscall facts; learning stopped it`,
      result,
    );
  if (result.status !== 'OK') {
    const why =
      result.status === 'VIOLATION'
        ? `it made ${result.violation?.syscall ?? 'a syscall'}, which sbx always denies (no policy can allow it)`
        : result.reason || result.status;
    throw new LearnError('RUN_FAILED', `the learning run did not end normally: ${result.status}: ${why}`, result);
  }
  return result;
}

/** Learns a policy file from `runs` runs of the program (see LearnOptions). */
export async function learnPolicyFile(options: LearnOptions): Promise<LearnReport> {
  if (options === null || typeof options !== 'object')
    throw new TypeError('learnPolicy(options): options must be an object');
  if (typeof options.path !== 'string' || options.path === '')
    throw new TypeError('learnPolicy: options.path must be a non-empty string');
  const runs = checkRuns(options.runs);
  const binary = new Executor(options.path, options.argv ?? [options.path], executorOptions(options)).path;
  const base = baseDoc(options, binary);
  let policy: Policy;
  try {
    policy = learningPolicy(base, binary);
  } catch (err) {
    if (err instanceof PolicyError)
      throw new LearnError(
        'BAD_BASE',
        `the base policy${typeof options.base === 'string' ? ` ${options.base}` : ''}: ${err.message}`,
      );
    throw err;
  }
  const facts = new LearnedFacts(policy.arch);
  const results: Result[] = [];
  for (let i = 0; i < runs; i++) results.push(await learnOnce({ ...options, path: binary }, policy, facts));
  const { doc, problems } = synthesize(facts, base);
  return { doc, facts, results, problems };
}

/**
 * Learns a policy from runs of a program and returns it as a PolicyBuilder (unbuilt: more can be
 * added). Options are the Executor's plus path, argv, base and runs (LearnOptions).
 */
export async function learnPolicy(options: LearnOptions): Promise<PolicyBuilder> {
  const { doc } = await learnPolicyFile(options);
  return loadPolicyFile(doc);
}

/** Runs the program again under the learned file, enforcing; the Result says OK or the violation. */
export async function verifyPolicyFile(doc: PolicyFile, options: LearnOptions): Promise<Result> {
  const ex = new Executor(options.path, options.argv ?? [options.path], executorOptions(options));
  const sandbox = new Sandbox(ex, enforcingPolicy(doc, ex.path));
  options.onSandbox?.(sandbox);
  return sandbox.run();
}
