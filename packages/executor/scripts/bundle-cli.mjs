#!/usr/bin/env node
// Bundles the sbx CLI (dist/cli/main.js and everything it imports, @sbx/client included) into a few
// files: Node then reads and compiles a handful of modules instead of ~40, which is a third of the
// CLI's own start-up cost. Code splitting keeps each command (run, policy, doctor) in its own
// chunk, loaded only when that command runs. msgpackr and ajv stay external (loaded lazily, if ever).
import { build } from 'esbuild';
import { readdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const pkg = join(dirname(fileURLToPath(import.meta.url)), '..');
// Chunk names carry a hash: drop the previous build's first.
for (const f of readdirSync(join(pkg, 'dist'))) if (f.startsWith('cli-bundle')) rmSync(join(pkg, 'dist', f));

await build({
  entryPoints: [join(pkg, 'dist', 'cli', 'main.js')],
  // Straight into dist/, next to the unbundled modules: the addon and the forkserver are found
  // relative to the module's own directory, which must stay at the same depth.
  outdir: join(pkg, 'dist'),
  outExtension: { '.js': '.mjs' },
  entryNames: 'cli-bundle',
  chunkNames: 'cli-bundle-[name]-[hash]',
  splitting: true,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  external: ['msgpackr', 'ajv'],
  logLevel: 'warning',
});
