#!/usr/bin/env node
// npm install hook of @sbx/client. A matching prebuild (prebuilds/sbx_native-linux-x64: the addon
// and the executables next to it) means nothing to do. Otherwise the native tree shipped in native/
// is built from source with cmake-js into build/ (found there first by the loader), as it is when
// the prebuild does not load here (an older glibc). A missing tool gives one message naming it
// instead of a page of CMake output.
// In the sbx repository (src/ present) the workspace's own build does this: nothing to do here.
import { spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { basename, delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const pkg = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(join(pkg, 'package.json'));
const options = require('./binding-options.cjs');

if (existsSync(join(pkg, 'src'))) process.exit(0);

/** Why the prebuild at `addon` cannot serve this system (an older glibc, say), or undefined. */
function prebuildProblem(addon) {
  try {
    require(addon);
  } catch (err) {
    return `the prebuilt addon does not load here (${err.message.split('\n')[0]})`;
  }
  for (const e of options.executables) {
    const exe = join(dirname(addon), basename(e));
    if (!existsSync(exe)) return `the prebuild has no ${basename(e)}`;
    // A usage error is fine; the dynamic loader failing (exit 127) or exec failing is not.
    const r = spawnSync(exe, ['--sbx-install-check'], {
      encoding: 'utf8',
      timeout: 10_000,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    if (r.error || r.status === 127 || r.signal)
      return `the prebuilt ${basename(e)} does not run here (${r.error?.message ?? (r.stderr.trim().split('\n')[0] || r.signal)})`;
  }
  return undefined;
}

const fromSource = process.env.npm_config_build_from_source === 'true';
let problem;
if (!fromSource) {
  const addon = require('pkg-prebuilds').resolve(pkg, options, true, false);
  if (addon) {
    problem = prebuildProblem(addon);
    if (!problem) process.exit(0);
  }
}

function fail(message) {
  console.error(`@sbx/client: ${message}`);
  process.exit(1);
}

function onPath(cmd) {
  if (cmd.includes('/')) return isExecutable(cmd);
  return (process.env.PATH ?? '').split(delimiter).some((dir) => dir && isExecutable(join(dir, cmd)));
}

function isExecutable(path) {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

// The tools CMake will need, checked first so that their absence is named plainly.
const cc = process.env.CC || 'cc';
const cxx = process.env.CXX || 'c++';
const missing = [];
if (!onPath('cmake')) missing.push('cmake (3.18 or later)');
if (!onPath(cc)) missing.push(`a C compiler (${cc}; e.g. gcc)`);
if (!onPath(cxx)) missing.push(`a C++17 compiler (${cxx}; e.g. g++)`);
if (!onPath('ninja') && !onPath('make')) missing.push('make (or ninja)');
const musl = existsSync('/etc/alpine-release') ? ' (musl)' : '';
const why = fromSource
  ? 'a source build was asked for (build_from_source)'
  : problem
    ? problem
    : `no prebuilt native parts in this package match ${process.platform}-${process.arch}${musl} (sbx ships them for linux-x64 with glibc)`;
if (missing.length > 0) {
  fail(
    `${why}, and building them from source needs ${missing.join(', ')}: not found on PATH. Install ${missing.length > 1 ? 'them' : 'it'} and run \`npm rebuild @sbx/client\`.`,
  );
}

console.error(`@sbx/client: ${why}; building them from source with cmake-js (under a minute)...`);
const cmakeJs = join(dirname(require.resolve('cmake-js/package.json')), 'bin', 'cmake-js');
const r = spawnSync(
  process.execPath,
  [
    cmakeJs,
    'build',
    '--directory',
    join(pkg, 'native'),
    '--out',
    join(pkg, 'build'),
    '--parallel',
    String(availableParallelism()),
    '--log-level',
    'warn',
    '--CDSBX_BUILD_TESTS=OFF',
  ],
  { stdio: 'inherit', cwd: pkg },
);
if (r.error) fail(`cannot run cmake-js: ${r.error.message}`);
if (r.status !== 0)
  fail(`the source build failed (cmake-js exit code ${r.status}); the compiler output above says why.`);
for (const e of options.executables) {
  if (!existsSync(join(pkg, 'build', e))) fail(`the source build did not produce build/${e}`);
}
