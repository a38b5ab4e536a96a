// cli-loader.js: loads the sbx CLI fast. The build (scripts/bundle-cli.mjs) puts every module the
// CLI needs in one CommonJS file, dist/cli-bundle.cjs, and then runs `sbx run -- /bin/true` once
// through writeCodeCache() below, which saves V8's code cache for the bundle: the bytecode of
// every function that run compiled. Loading the bundle with that cache spares Node parsing and
// compiling ~300 KB of JS at every start, about a tenth of `sbx run`'s whole cost.
// The cache file is named for the V8 version that made it (V8 refuses any other), and is made
// with the bundle by the same build (a bundle changed by hand needs a new build).
// Without the bundle (an unbuilt checkout), the plain ESM modules of dist/cli run instead.
'use strict';
const { readFileSync, writeFileSync } = require('node:fs');
const { createRequire } = require('node:module');
const { join } = require('node:path');

const dist = join(__dirname, '..', 'dist');
const bundle = join(dist, 'cli-bundle.cjs');
const cacheFile = join(dist, `cli-bundle.v8-${process.versions.v8}.cache`);

/** The bundle's source as a CommonJS function (the wrapper Node's own loader would add). */
function compile(source, cachedData) {
  const vm = require('node:vm');
  const wrapped = `(function (exports, require, module, __filename, __dirname) {${source}\n})`;
  return new vm.Script(wrapped, { filename: bundle, ...(cachedData ? { cachedData } : {}) });
}

function run(script) {
  const mod = { exports: {} };
  script.runInThisContext()(mod.exports, createRequire(bundle), mod, bundle, dist);
  return mod.exports;
}

/** The CLI's module: { main(argv) }. */
async function loadCli() {
  let source;
  try {
    source = readFileSync(bundle, 'utf8');
  } catch {
    return import('../dist/cli/main.js');
  }
  let cachedData;
  try {
    cachedData = readFileSync(cacheFile);
  } catch {
    // no cache for this Node: Node's own compile cache where it has one (22.1+)
    require('node:module').enableCompileCache?.();
    return require(bundle);
  }
  return run(compile(source, cachedData));
}

/** Build step: runs the CLI with `argv` from a fresh compile and saves the code cache at exit. */
function writeCodeCache(argv) {
  const script = compile(readFileSync(bundle, 'utf8'));
  process.on('exit', () => writeFileSync(cacheFile, script.createCachedData()));
  return run(script).main(argv);
}

module.exports = { loadCli, writeCodeCache };
