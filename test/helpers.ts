// helpers.ts: shared bits of the integration tests.
import { readdirSync, existsSync } from 'node:fs';
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

/** Resolves after the event loop had a chance to run pending callbacks. */
export function tick(ms = 20): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
