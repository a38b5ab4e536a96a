#!/usr/bin/env node
// Builds the native tree. Default: cmake-js Release build into native/build (the Node addon, the
// C libraries, the forkserver and the test programs). `--sanitize`: a plain CMake build with
// ASan/UBSan into native/build-asan for the C tests (no addon: sanitizers and Node do not mix).
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { availableParallelism } from 'node:os';
import { createRequire } from 'node:module';
import { mkdirSync, readFileSync, readlinkSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { NODE_LINES, cachedLine, runningHeaders, runningMajor } from './node-lines.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const jobs = String(availableParallelism());

function run(cmd, args) {
  const r = spawnSync(cmd, args, { stdio: 'inherit', cwd: here });
  if (r.error) {
    const hint =
      r.error.code === 'ENOENT' ? ` (is ${cmd} installed? the native build needs cmake, a C99 compiler and g++)` : '';
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
  writeIfChanged(
    join(here, 'build', 'fork-node-headers.txt'),
    forkHeaders()
      .map((d) => `${d}\n`)
      .join(''),
  );
  const cmakeJs = join(dirname(require.resolve('cmake-js/package.json')), 'bin', 'cmake-js');
  run(process.execPath, [
    cmakeJs,
    'build',
    '--directory',
    here,
    '--out',
    join(here, 'build'),
    '--parallel',
    jobs,
    '--log-level',
    'warn',
  ]);
  linkClientBuild();
}

// The custom-fork binding is built once per Node ABI: for the running node, and for every other
// supported line whose npm build is in the node-lines cache (node native/node-lines.mjs install;
// the packaging and CI fill it, so that every supported line's binding ships).
function forkHeaders() {
  const dirs = [];
  const own = runningHeaders();
  if (own) dirs.push(own);
  else
    console.error(
      `sbx native build: no headers of the running node ${process.version} found (include/node next to it, /usr/include/node): no custom-fork binding for it`,
    );
  for (const major of NODE_LINES) {
    if (major === runningMajor) continue;
    const line = cachedLine(major);
    if (line) dirs.push(line.headers);
  }
  return dirs;
}

function writeIfChanged(path, text) {
  let old;
  try {
    old = readFileSync(path, 'utf8');
  } catch {
    // first build
  }
  if (old === text) return;
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, text);
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
    if (err.code !== 'ENOENT')
      throw new Error(`sbx native build: ${link} exists and is not a link to ${target}; remove it`);
  }
  if (current === target) return;
  if (current !== undefined) unlinkSync(link);
  symlinkSync(target, link);
}
