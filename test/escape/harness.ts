// harness.ts: shared bits of the escape suite (test/escape/*.test.ts). Every attempt runs
// native/testcases/escape_probe in a real sandbox; every test file checks afterwards that the
// executor (this vitest worker) is unharmed: no fd left behind, and a new sandbox still runs.
import { readdirSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, expect } from 'vitest';
import type { PolicyBuilder, ExecutorOptions, LimitsOptions } from '@sbx/executor';
import { isolationPolicy, openFdCount, runCaptured, testcase, tick, type Captured } from '../helpers.js';

export const asRoot = process.getuid?.() === 0;

export function probePath(): string {
  return testcase('escape_probe');
}

/** isolationPolicy (default allow, the always-on denials, the usual read-only view) plus the probe. */
export function escapePolicy(extra?: (b: PolicyBuilder) => void) {
  return isolationPolicy((b) => {
    b.addFile(probePath());
    extra?.(b);
  });
}

/** Runs `escape_probe NAME ARGS...` in a sandbox (walltime 10 s unless said otherwise). */
export function probe(
  args: string[],
  options: {
    policy?: ReturnType<typeof escapePolicy>;
    executor?: ExecutorOptions;
    before?: NonNullable<Parameters<typeof runCaptured>[1]>['before'];
  } = {},
): Promise<Captured> {
  const executor: ExecutorOptions = {
    ...options.executor,
    limits: { walltime: 10, ...(options.executor?.limits as LimitsOptions | undefined) },
  };
  return runCaptured([probePath(), ...args], {
    policy: options.policy ?? escapePolicy(),
    executor,
    before: options.before,
  });
}

/** stdout as lines (without the trailing empty one). */
export function lines(c: Captured): string[] {
  return c.stdout.split('\n').filter((l) => l !== '');
}

/** Asserts a violation of `syscall` whose call never returned: stdout stops at "NAME: calling". */
export function expectViolation(c: Captured, syscall: string, name: string): void {
  expect(c.result.status, c.result.toString()).toBe('VIOLATION');
  expect(c.result.violation?.kind).toBe('syscall');
  expect(c.result.violation?.syscall).toBe(syscall);
  expect(c.result.violation?.arch).toBe('x86_64');
  expect(lines(c).at(-1)).toBe(`${name}: calling`);
}

function threadCount(): number {
  return Number(/^Threads:\s+(\d+)/m.exec(readFileSync('/proc/self/status', 'utf8'))![1]);
}

function parentOf(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return 0;
  }
}

/** Pids of this process's descendants (sandboxees of this test file, not of a parallel worker)
 *  whose argv[0] is `path`. */
export function processesRunning(path: string): number[] {
  const found: number[] = [];
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      if (readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0')[0] !== path) continue;
    } catch {
      continue; // gone meanwhile
    }
    for (let q = parentOf(Number(p)), depth = 0; q > 1 && depth < 64; q = parentOf(q), depth++) {
      if (q === process.pid) {
        found.push(Number(p));
        break;
      }
    }
  }
  return found;
}

/**
 * Registers hooks: a baseline before the file's tests, and afterwards the executor is unharmed:
 * its fd count is back to the baseline, its thread count did not grow beyond libuv's pool, no
 * probe process is left on the host, and a fresh sandbox still runs /bin/true.
 */
export function executorStaysUnharmed(): void {
  let fds = 0;
  let threads = 0;
  beforeAll(async () => {
    await runCaptured(['/bin/true']); // the forkserver and the monitor thread exist from here on
    await tick(50);
    fds = openFdCount();
    threads = threadCount();
  });
  afterAll(async () => {
    const { result } = await runCaptured(['/bin/true']);
    expect(result.status, result.toString()).toBe('OK');
    await tick(100);
    expect(openFdCount()).toBe(fds);
    expect(threadCount()).toBeLessThanOrEqual(threads + 4);
    expect(processesRunning(probePath())).toEqual([]);
  });
}
