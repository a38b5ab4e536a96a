// matchers.ts: the sandbox matchers as plain functions for expect.extend() (vitest, or any
// Jest-compatible expect). No test framework is imported here; testing/vitest.ts registers them.
import { Result } from '../sandbox/result.js';
import { describeResult } from './run.js';

export interface MatcherResult {
  pass: boolean;
  message: () => string;
  actual?: unknown;
  expected?: unknown;
}

function asResult(received: unknown, matcher: string): Result {
  if (!(received instanceof Result)) {
    throw new TypeError(
      `${matcher}: expected a sbx Result (await the run first), got ${received === null ? 'null' : typeof received}`,
    );
  }
  return received;
}

export const sbxMatchers = {
  /** Passes when the program ran to its own exit (status OK): no violation, timeout or signal. */
  toRunWithoutViolation(received: unknown): MatcherResult {
    const result = asResult(received, 'toRunWithoutViolation');
    const pass = result.status === 'OK';
    return {
      pass,
      message: () =>
        pass
          ? `expected the sandboxed run to be stopped, but it ran cleanly: ${result.toString()}`
          : describeResult(result),
    };
  },

  /** Passes when the sandbox stopped the program with a violation (of `syscall`, when given). */
  toViolatePolicy(received: unknown, syscall?: string): MatcherResult {
    const result = asResult(received, 'toViolatePolicy');
    const got = result.violation?.syscall;
    const pass = result.status === 'VIOLATION' && (syscall === undefined || got === syscall);
    const wanted = syscall === undefined ? 'a violation' : `a violation of ${syscall}`;
    return {
      pass,
      message: () =>
        pass
          ? `expected no ${wanted}, but:\n${describeResult(result)}`
          : `expected ${wanted}, but:\n${describeResult(result)}`,
      actual: got ?? result.status,
      expected: syscall ?? 'VIOLATION',
    };
  },
};
