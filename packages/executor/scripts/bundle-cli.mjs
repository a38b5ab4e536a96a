#!/usr/bin/env node
// Bundles the sbx CLI (dist/cli/main.js and everything it imports, @sbx/client included) into one
// file: Node then reads and compiles one module instead of ~40, which is a third of the CLI's own
// start-up cost. msgpackr stays external (the CLI loads it lazily, if ever).
import { build } from 'esbuild';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const pkg = join(dirname(fileURLToPath(import.meta.url)), '..');
await build({
  entryPoints: [join(pkg, 'dist', 'cli', 'main.js')],
  outfile: join(pkg, 'dist', 'cli.bundle.mjs'),
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  external: ['msgpackr'],
  logLevel: 'warning',
});
