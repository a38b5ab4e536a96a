#!/usr/bin/env node
// `pnpm test` and `pnpm demo` work on a fresh clone: install (which builds everything) first when
// the dependencies are not there yet.
import { existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..');
if (!existsSync(join(root, 'node_modules', '.bin', 'vitest')) || !existsSync(join(root, 'node_modules', 'cmake-js'))) {
  console.log('sbx: dependencies are not installed yet: running pnpm install (builds the native parts too)');
  const r = spawnSync('pnpm', ['install'], { cwd: root, stdio: 'inherit' });
  if (r.error) {
    console.error(`sbx: cannot run pnpm (${r.error.message}); install it with: npm install -g pnpm`);
    process.exit(1);
  }
  if (r.status !== 0) process.exit(r.status ?? 1);
}
