// @sbx/executor/testing/vitest: registers the sandbox matchers with vitest's expect and types them.
// Import it once (a test file or `setupFiles`); vitest is an optional peer dependency.
import { expect } from 'vitest';
import { sbxMatchers } from './matchers.js';

expect.extend(sbxMatchers);

interface SbxMatchers<R = unknown> {
  /** The program ran to its own exit: no violation, timeout or signal. Fails with the violation's
   *  syscall, arguments and a suggested policy line. */
  toRunWithoutViolation(): R;
  /** The sandbox stopped the program with a violation (of `syscall`, when given). */
  toViolatePolicy(syscall?: string): R;
}

declare module 'vitest' {
  // biome-ignore lint/suspicious/noExplicitAny: declaration merging needs vitest's own `Matchers<T = any>` parameter list
  interface Matchers<T = any> extends SbxMatchers<T> {}
}
