#!/usr/bin/env node
// Before `pnpm pack` / publish: puts into this package what its tarball ships besides dist/:
//   native/     the native source tree for the install-time source build (no tests, benches,
//               fuzzers or test programs: those directories are not needed to build the parts)
//   prebuilds/  the parts built here, stripped: the addon as pkg-prebuilds names it, every
//               executable of binding-options.cjs next to it, and the custom-fork binding of every
//               supported Node line (sbx_fork-node-v<ABI>.node; their headers come with the npm
//               builds of those lines, installed into the node-lines cache when missing)
// It builds the repository's native tree first, so the prebuilds are this checkout's code.
// `--clean` (postpack) removes both again, so that the repository's own build stays the one used.
import { spawnSync } from 'node:child_process';
import { chmodSync, cpSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, dirname, join, relative, sep } from 'node:path';
import { LINE_ABI, NODE_LINES, installLine, runningMajor } from '../../../native/node-lines.mjs';
import { fileURLToPath } from 'node:url';

const pkg = join(dirname(fileURLToPath(import.meta.url)), '..');
const repoNative = join(pkg, '..', '..', 'native');
const require = createRequire(join(pkg, 'package.json'));
const options = require('./binding-options.cjs');
const staged = [join(pkg, 'native'), join(pkg, 'prebuilds')];

function run(cmd, args) {
  const r = spawnSync(cmd, args, { stdio: 'inherit', cwd: pkg });
  if (r.error || r.status !== 0) {
    console.error(
      `@sbx/client prepack: ${cmd} ${args.join(' ')} failed: ${r.error?.message ?? `exit code ${r.status}`}`,
    );
    process.exit(1);
  }
}

for (const dir of staged) rmSync(dir, { recursive: true, force: true });
if (process.argv.includes('--clean')) process.exit(0);

// Directory names that are development-only anywhere in the native tree; build* also drops the
// repository's build trees and build.mjs (the package's own build driver is scripts/install.mjs).
const devOnly = new Set(['tests', 'bench', 'fuzz', 'testcases', 'corpus']);
cpSync(repoNative, join(pkg, 'native'), {
  recursive: true,
  filter: (src) => {
    const rel = src.slice(repoNative.length + 1);
    if (rel === '') return true;
    const parts = rel.split(sep);
    return !parts.some((p) => devOnly.has(p) || p.startsWith('build')) && rel !== 'node-lines.mjs';
  },
});

for (const major of NODE_LINES) if (major !== runningMajor) installLine(major);
run(process.execPath, [join(repoNative, 'build.mjs')]);
const build = join(repoNative, 'build');
run(process.execPath, [
  join(dirname(require.resolve('pkg-prebuilds/package.json')), 'bin', 'copy.mjs'),
  '--baseDir',
  relative(pkg, join(build, 'Release')),
  '--source',
  `${options.name}.node`,
  '--name',
  options.name,
  '--napi_version',
  String(Math.max(...options.napi_versions)),
  '--strip',
]);
const addon = require('pkg-prebuilds').resolve(pkg, options, true, true);
for (const e of options.executables) {
  const dest = join(dirname(addon), basename(e));
  cpSync(join(build, e), dest);
  run('strip', ['--strip-all', dest]);
  chmodSync(dest, 0o755);
}
const forkBindings = NODE_LINES.map((m) => `sbx_fork-node-v${LINE_ABI[m]}.node`);
for (const f of forkBindings) {
  const dest = join(dirname(addon), f);
  cpSync(join(build, 'Release', f), dest); // fails when the build lacks one: every supported line ships
  run('strip', ['--strip-unneeded', dest]);
}
console.error(
  `@sbx/client prepack: staged native/ and ${addon.slice(pkg.length + 1)} (+ ${[...options.executables.map((e) => basename(e)), ...forkBindings].join(', ')})`,
);
