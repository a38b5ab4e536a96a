#!/usr/bin/env node
// Builds the native tree. Default: cmake-js Release build into native/build (the Node addon, the
// C libraries, the forkserver and the test programs). `--sanitize`: a plain CMake build with
// ASan/UBSan into native/build-asan for the C tests (no addon: sanitizers and Node do not mix).
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { availableParallelism } from 'node:os';
import { createRequire } from 'node:module';
import { readlinkSync, symlinkSync, unlinkSync } from 'node:fs';

const here = dirname(fileURLToPath(import.meta.url));
const jobs = String(availableParallelism());

function run(cmd, args) {
  const r = spawnSync(cmd, args, { stdio: 'inherit', cwd: here });
  if (r.error) {
    const hint = r.error.code === 'ENOENT' ? ` (is ${cmd} installed? the native build needs cmake, a C99 compiler and g++)` : '';
    console.error(`sbx native build: cannot run ${cmd}: ${r.error.message}${hint}`);
    process.exit(1);
  }
  if (r.status !== 0) {
    console.error(`sbx native build: ${cmd} ${args.join(' ')} failed with exit code ${r.status}`);
    process.exit(r.status ?? 1);
  }
}

if (process.argv.includes('--sanitize')) {
  const out = join(here, 'build-asan');
  run('cmake', ['-S', here, '-B', out, '-DCMAKE_BUILD_TYPE=Debug', '-DSBX_SANITIZE=ON']);
  run('cmake', ['--build', out, '-j', jobs]);
} else {
  const require = createRequire(import.meta.url);
  const cmakeJs = join(dirname(require.resolve('cmake-js/package.json')), 'bin', 'cmake-js');
  run(process.execPath, [cmakeJs, 'build', '--directory', here, '--out', join(here, 'build'),
    '--parallel', jobs, '--log-level', 'warn']);
  linkClientBuild();
}

// @sbx/client finds its native parts package-relatively (<package>/build, else <package>/prebuilds,
// as in an npm install): in the repository its build/ is this build tree.
function linkClientBuild() {
  const link = join(here, '..', 'packages', 'client', 'build');
  const target = join('..', '..', 'native', 'build');
  let current;
  try {
    current = readlinkSync(link);
  } catch (err) {
    if (err.code !== 'ENOENT') throw new Error(`sbx native build: ${link} exists and is not a link to ${target}; remove it`);
  }
  if (current === target) return;
  if (current !== undefined) unlinkSync(link);
  symlinkSync(target, link);
}
