// run.ts: run a program under a policy the way production does, and turn a Result that is not a
// clean run into an error that says what was stopped and which policy line would allow it.
import { Executor, type ExecutorOptions } from '../sandbox/executor.js';
import type { Policy } from '../policy/policy.js';
import type { Result } from '../sandbox/result.js';
import { Sandbox } from '../sandbox/sandbox.js';
import { suggestPolicyLine } from './suggest.js';
import { SbxError } from '@sbx/client';

/** Default wall-time limit of runSandboxed(), in seconds: a hung test program fails, not the suite. */
export const DEFAULT_TEST_WALLTIME = 30;

/**
 * Runs argv[0] (with argv) in a real sandbox under `policy` and resolves to its Result.
 * Options are the Executor's; stdio defaults to 'ignore' and the wall time to 30 s.
 */
export async function runSandboxed(
  argv: readonly string[],
  policy: Policy,
  options: ExecutorOptions = {},
): Promise<Result> {
  if (!Array.isArray(argv) || argv.length === 0 || typeof argv[0] !== 'string') {
    throw new TypeError(
      'runSandboxed(argv, policy): argv must be a non-empty array of strings (argv[0] is the program)',
    );
  }
  const executor = new Executor(argv[0], argv, {
    stdio: 'ignore',
    ...options,
    limits: options.limits ?? { walltime: DEFAULT_TEST_WALLTIME },
  });
  return new Sandbox(executor, policy).run();
}

/** A readable account of a Result: its status line and, for a violation, the syscall, its
 *  arguments and the policy line that would allow it (or why none can). */
export function describeResult(result: Result): string {
  const v = result.violation;
  if (!v) return `sandbox result: ${result.toString()}`;
  const args = v.args.map((a) => `0x${a.toString(16)}`).join(', ');
  const lines = [
    `sandbox violation: ${v.syscall}(${args}) [${v.arch}, nr ${v.nr}]${v.address ? ` to ${v.address}` : ''} by pid ${v.pid}`,
  ];
  const s = suggestPolicyLine(v);
  if (s.builder) lines.push(`  allow it with:   ${s.builder}`);
  if (s.policyFile) lines.push(`  in a policy file: ${s.policyFile}`);
  if (s.note) lines.push(`  ${s.builder ? 'note' : 'why'}: ${s.note}`);
  lines.push(`  result: ${result.toString()}`);
  return lines.join('\n');
}

/** Thrown by expectNoViolation(); `result` is the Result that was not a clean run. */
export class SandboxTestError extends SbxError {
  declare readonly code: 'SANDBOX_FAILED';
  readonly result: Result;
  constructor(result: Result) {
    super('SANDBOX_FAILED', describeResult(result));
    this.result = result;
  }
}

/** Returns the Result when the program ran to its own exit (status OK); throws a SandboxTestError
 *  describing the violation (or the timeout, signal, setup error) otherwise. */
export function expectNoViolation(result: Result): Result {
  if (result.status !== 'OK') throw new SandboxTestError(result);
  return result;
}
