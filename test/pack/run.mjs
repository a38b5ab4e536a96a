#!/usr/bin/env node
// The packages as users get them: `pnpm pack` the three (@sbx/client, @sbx/executor, @sbx/modules), lint the tarballs (publint, attw), install
// them with plain npm into fresh projects outside the repository and run the consumers in
// test/pack/consumer there. Three installs:
//   prebuilt      the C toolchain hidden from PATH: the shipped prebuilds must be used
//   no-toolchain  prebuilds removed and toolchain hidden: the install fails with one message naming the tools
//   source        prebuilds removed: the install builds the native parts with cmake-js
//   broken-prebuild  a prebuild that does not load (as on an older glibc): a source build instead
//   ignore-scripts   npm --ignore-scripts (npm 11 runs no dependency install script unless allowed):
//                    the prebuilds work as they are; without prebuilds the load error names the
//                    exact command that builds them, and that command works
// Also: the prebuilds need no glibc above 2.28 (test/check-glibc.mjs), and every shipped source
// map carries its sources (stack traces point at files that ship).
// The prebuilt install's consumers (custom-fork mode included) also run under every other
// supported Node line in the node-lines cache (native/node-lines.mjs): the shipped fork bindings.
// Prints tarball sizes and install times; exits 1 on the first failure.
// Usage: node test/pack/run.mjs [--keep] [--only prebuilt|no-toolchain|source|broken-prebuild|ignore-scripts]
import { execFileSync, spawnSync } from 'node:child_process';
import {
  chmodSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join, resolve } from 'node:path';
import { LINE_ABI, NODE_LINES, cachedLine, nodeLinesDir, runningMajor } from '../../native/node-lines.mjs';

const repo = resolve(import.meta.dirname, '..', '..');
const consumerDir = join(import.meta.dirname, 'consumer');
const keep = process.argv.includes('--keep');
const only = process.argv.includes('--only') ? process.argv[process.argv.indexOf('--only') + 1] : undefined;
const work = mkdtempSync(join(tmpdir(), 'sbx-pack-'));
chmodSync(work, 0o755); // the Node sandboxee's view binds a project directory in here
const results = [];
let passed = 0;
let failed = 0;
/** The @sbx/modules tarball, installed with the other two in every install. */
let modulesTgz;

function log(msg) {
  console.log(`[pack] ${msg}`);
}

function run(cmd, args, { cwd, env = process.env, expectFail = false } = {}) {
  const t0 = performance.now();
  const r = spawnSync(cmd, args, { cwd, env, encoding: 'utf8', maxBuffer: 64 << 20 });
  const ms = performance.now() - t0;
  const out = `${r.stdout ?? ''}${r.stderr ?? ''}`;
  if (r.error) throw new Error(`${cmd} ${args.join(' ')}: ${r.error.message}`);
  if ((r.status !== 0) !== expectFail) {
    throw new Error(
      `${cmd} ${args.join(' ')} in ${cwd} ${expectFail ? 'succeeded but should have failed' : `exited with ${r.status}`}:\n${out}`,
    );
  }
  return { out, ms, status: r.status };
}

function check(name, fn) {
  try {
    const detail = fn();
    passed++;
    log(`ok   ${name}${detail ? ` (${detail})` : ''}`);
  } catch (err) {
    failed++;
    log(`FAIL ${name}\n${err.message}`);
  }
}

/** A PATH of links to every program on PATH except the C/C++ toolchain and build tools. */
function pathWithoutToolchain() {
  const dir = join(work, 'no-toolchain-bin');
  mkdirSync(dir);
  const toolchain =
    /^(cc|c\+\+|cpp|gcc|g\+\+|clang|clang\+\+|cmake|ctest|cpack|make|gmake|ninja|ld|ld\.\w+|as|x86_64-linux-gnu-.+)(-[\d.]+)?$/;
  for (const p of (process.env.PATH ?? '').split(delimiter)) {
    if (!p || !existsSync(p)) continue;
    for (const name of readdirSync(p)) {
      if (toolchain.test(name) || existsSync(join(dir, name))) continue;
      try {
        symlinkSync(join(p, name), join(dir, name));
      } catch {
        // a name seen twice on PATH: the first one wins, as in the shell
      }
    }
  }
  const hidden = spawnSync('sh', ['-c', 'command -v cc || command -v gcc || command -v cmake || command -v make'], {
    env: { PATH: dir },
    encoding: 'utf8',
  });
  if (hidden.stdout.trim()) throw new Error(`the toolchain is still on the reduced PATH: ${hidden.stdout}`);
  return dir;
}

/** A copy of the @sbx/client tarball changed by `change(packageDir)`. */
function repacked(tarball, name, change) {
  const dir = join(work, `client-${name}`);
  mkdirSync(dir);
  run('tar', ['xzf', tarball, '-C', dir]);
  change(join(dir, 'package'));
  const out = join(work, `sbx-client-0.1.0-${name}.tgz`);
  run('tar', ['czf', out, '-C', dir, 'package']);
  return out;
}

/** A fresh npm project with the three tarballs installed; returns the install time. */
function install(name, clientTgz, executorTgz, env, expectFail = false, extraFlags = []) {
  const dir = join(work, name);
  mkdirSync(dir);
  cpSync(consumerDir, dir, { recursive: true });
  writeFileSync(
    join(dir, 'package.json'),
    JSON.stringify({ name: `sbx-pack-${name}`, private: true, type: 'module' }, null, 2),
  );
  // The tarballs in one install: the executor's and the modules' dependencies on @sbx/client and
  // @sbx/executor 0.1.0 are satisfied by the tarballs at the top level, without a registry lookup.
  const r = run(
    'npm',
    [
      'install',
      '--no-audit',
      '--no-fund',
      '--prefer-offline',
      '--foreground-scripts',
      ...extraFlags,
      clientTgz,
      executorTgz,
      modulesTgz,
    ],
    { cwd: dir, env, expectFail },
  );
  return { dir, ms: r.ms, out: r.out };
}

function consumers(dir, env) {
  const node = (file) => run(process.execPath, [file], { cwd: dir, env }).out;
  forkConsumer(dir, env, process.execPath, process.versions.node);
  modulesConsumer(dir, env, process.execPath, process.versions.node);
  check('ESM consumer: /bin/echo in a sandbox', () => {
    const out = node('esm.mjs');
    if (!out.includes('echo from the esm consumer') || !out.includes('esm consumer: OK, exit code 0'))
      throw new Error(out);
  });
  check('TypeScript consumer compiled with tsc --strict', () => {
    run('npx', ['tsc', '-p', '.'], { cwd: dir, env });
    const out = node('out/consumer.js');
    if (!out.includes('echo from the typescript consumer') || !out.includes('ts consumer: OK, exit code 0'))
      throw new Error(out);
  });
  check('npx sbx run -- /bin/echo', () => {
    const out = run('npx', ['sbx', 'run', '--', '/bin/echo', 'echo from npx sbx'], { cwd: dir, env }).out;
    if (!out.includes('echo from npx sbx')) throw new Error(out);
  });
  check('a Node sandboxee using @sbx/client sandboxMeHere()', () => {
    const out = node('me-here-runner.mjs');
    if (!out.includes('"sandboxed":true') || !out.includes('VIOLATION')) throw new Error(out);
  });
  check('the testing helper catches a violation and names the policy line', () => {
    const out = node('testing.mjs');
    if (!out.includes('allow it with:')) throw new Error(out);
    return out.split('\n').find((l) => l.startsWith('sandbox violation:'));
  });
}

/** Custom-fork mode from the installed packages under the node binary `node`. */
function forkConsumer(dir, env, node, version) {
  check(`custom-fork consumer on node ${version}: three children answer, a violation is reported`, () => {
    const out = run(node, ['fork-runner.mjs'], { cwd: dir, env }).out;
    if (!out.includes('3 children OK from 3 pids') || !out.includes('VIOLATION')) throw new Error(out);
  });
}

/** @sbx/modules from the installed packages under the node binary `node`. */
function modulesConsumer(dir, env, node, version) {
  check(`@sbx/modules consumer on node ${version}: a call and a session answer, a file read is a VIOLATION`, () => {
    const out = run(node, ['modules-runner.mjs'], { cwd: dir, env }).out;
    if (!out.includes('modules consumer: OK')) throw new Error(out);
  });
}

/** The consumers that depend on the Node line, under each other supported line in the cache. */
function otherLines(dir, env) {
  for (const major of NODE_LINES.filter((m) => m !== runningMajor)) {
    const line = cachedLine(major);
    if (!line) {
      check(`node ${major} is in the node-lines cache`, () => {
        throw new Error(`not in ${nodeLinesDir()}: node native/node-lines.mjs install ${major}`);
      });
      continue;
    }
    // npx and the consumers' own child processes find this node first on PATH
    const lineEnv = { ...env, PATH: `${dirname(line.node)}${delimiter}${env.PATH}` };
    check(`ESM consumer on node ${line.version}`, () => {
      const out = run(line.node, ['esm.mjs'], { cwd: dir, env: lineEnv }).out;
      if (!out.includes('esm consumer: OK, exit code 0')) throw new Error(out);
    });
    check(`sandboxMeHere() consumer on node ${line.version}`, () => {
      const out = run(line.node, ['me-here-runner.mjs'], { cwd: dir, env: lineEnv }).out;
      if (!out.includes('"sandboxed":true') || !out.includes('VIOLATION')) throw new Error(out);
    });
    forkConsumer(dir, lineEnv, line.node, line.version);
    modulesConsumer(dir, lineEnv, line.node, line.version);
  }
}

/** What is on disk in the installed @sbx/client, and which files the loader picks. */
function nativeFiles(dir, env) {
  const pkg = join(dir, 'node_modules', '@sbx', 'client');
  const script =
    "import('@sbx/client/internal').then((m) => console.log(JSON.stringify([m.nativeAddonPath(), m.nativeExecutablePath('forkserver/sbx-forkserver')])))";
  const [addon, forkserver] = JSON.parse(run(process.execPath, ['-e', script], { cwd: dir, env }).out);
  return {
    pkg,
    prebuilds: existsSync(join(pkg, 'prebuilds')),
    build: existsSync(join(pkg, 'build', 'Release', 'sbx_native.node')),
    addon,
    forkserver,
  };
}

try {
  log(`work directory ${work}`);
  // The TypeScript and the CLI bundle as they are now; packing then runs @sbx/client's prepack
  // (a native build, the staged sources and the prebuilds).
  run('pnpm', ['run', 'build'], { cwd: repo });
  const packs = join(work, 'tarballs');
  for (const p of ['client', 'executor', 'modules'])
    run('pnpm', ['pack', '--pack-destination', packs], { cwd: join(repo, 'packages', p) });
  const clientTgz = join(packs, 'sbx-client-0.1.0.tgz');
  const executorTgz = join(packs, 'sbx-executor-0.1.0.tgz');
  modulesTgz = join(packs, 'sbx-modules-0.1.0.tgz');
  for (const t of [clientTgz, executorTgz, modulesTgz]) {
    const files = execFileSync('tar', ['tzf', t], { encoding: 'utf8' }).trim().split('\n');
    results.push(`${t.split('/').pop()}: ${(statSync(t).size / 1024).toFixed(0)} KiB packed, ${files.length} files`);
    check(`${t.split('/').pop()} holds no tests, sources of other packages or build directories`, () => {
      const bad = files.filter((f) =>
        /(\.test\.|\/tests?\/|\/bench\/|\/fuzz\/|\/testcases\/|^package\/build\/|^package\/src\/|tsbuildinfo)/.test(f),
      );
      if (bad.length) throw new Error(bad.join('\n'));
    });
    if (t === clientTgz) {
      check('the client tarball ships a fork binding for every supported Node line', () => {
        const want = NODE_LINES.map((m) => `package/prebuilds/sbx_native-linux-x64/sbx_fork-node-v${LINE_ABI[m]}.node`);
        const missing = want.filter((f) => !files.includes(f));
        if (missing.length) throw new Error(`missing: ${missing.join(', ')}`);
        return NODE_LINES.map((m) => `Node ${m}: v${LINE_ABI[m]}`).join(', ');
      });
    }
    check(
      `publint ${t.split('/').pop()}`,
      () => void run('pnpm', ['exec', 'publint', 'run', t, '--strict'], { cwd: repo }),
    );
    // ESM-only packages (Node >= 20): the CommonJS and node10 resolutions are not targets.
    check(
      `attw ${t.split('/').pop()}`,
      () => void run('pnpm', ['exec', 'attw', t, '--profile', 'esm-only'], { cwd: repo }),
    );
  }
  check('the prebuilds need no glibc above 2.28 (check-glibc)', () => {
    const dir = join(work, 'client-unpacked');
    mkdirSync(dir);
    run('tar', ['xzf', clientTgz, '-C', dir]);
    return run(process.execPath, [join(repo, 'test', 'check-glibc.mjs'), join(dir, 'package', 'prebuilds')], {
      cwd: repo,
    })
      .out.trim()
      .split('\n')
      .map((l) => l.replace(/^check-glibc: ok\s+\S*\//, ''))
      .join('; ');
  });
  check('every shipped source map carries its sources (stack traces point at shipped files)', () => {
    let maps = 0;
    for (const t of [clientTgz, executorTgz, modulesTgz]) {
      const dir = join(work, `maps-${t.split('/').pop()}`);
      mkdirSync(dir);
      run('tar', ['xzf', t, '-C', dir]);
      const walk = (d) =>
        readdirSync(d, { withFileTypes: true }).flatMap((e) =>
          e.isDirectory() ? walk(join(d, e.name)) : [join(d, e.name)],
        );
      for (const f of walk(dir)) {
        if (f.endsWith('.d.ts.map')) throw new Error(`${f}: a declaration map points at sources that do not ship`);
        if (!f.endsWith('.js.map')) continue;
        const m = JSON.parse(readFileSync(f, 'utf8'));
        if (
          !Array.isArray(m.sourcesContent) ||
          m.sourcesContent.length !== m.sources.length ||
          m.sourcesContent.some((c) => typeof c !== 'string')
        )
          throw new Error(`${f}: no sourcesContent`);
        maps++;
      }
    }
    return `${maps} maps`;
  });
  const noToolchain = { ...process.env, PATH: pathWithoutToolchain() };
  delete noToolchain.npm_config_build_from_source;

  if (!only || only === 'prebuilt') {
    log('install 1: prebuilt parts, C toolchain hidden from PATH');
    const { dir, ms } = install('prebuilt', clientTgz, executorTgz, noToolchain);
    results.push(`npm install (prebuilt, no toolchain): ${(ms / 1000).toFixed(1)} s`);
    check('the prebuilds are used (no source build)', () => {
      const f = nativeFiles(dir, noToolchain);
      const from = join(f.pkg, 'prebuilds', 'sbx_native-linux-x64');
      if (
        !f.prebuilds ||
        f.build ||
        f.addon !== join(from, 'node-napi-v8.node') ||
        f.forkserver !== join(from, 'sbx-forkserver')
      )
        throw new Error(JSON.stringify(f));
    });
    run(
      'npm',
      ['install', '--no-audit', '--no-fund', '--prefer-offline', 'typescript@~5.9.3', '@types/node@^20.19.0'],
      { cwd: dir, env: noToolchain },
    );
    consumers(dir, noToolchain);
    otherLines(dir, noToolchain);
  }

  // A platform we ship no prebuild for: the same package without prebuilds/.
  const clientSrcTgz = repacked(clientTgz, 'noprebuilds', (p) => rmSync(join(p, 'prebuilds'), { recursive: true }));
  if (!only || only === 'no-toolchain') {
    log('install 2: no prebuilds and no toolchain');
    const { out } = install('no-toolchain', clientSrcTgz, executorTgz, noToolchain, true);
    check('one message names the missing tools', () => {
      const line = out
        .split('\n')
        .find((l) => l.includes('@sbx/client: no prebuilt native parts in this package match linux-x64'));
      if (
        !line ||
        !/needs cmake \(3\.18 or later\), a C compiler .*, a C\+\+17 compiler .*, make \(or ninja\): not found on PATH/.test(
          line,
        )
      )
        throw new Error(out);
      return line.trim();
    });
  }

  if (!only || only === 'source') {
    log('install 3: no prebuilds, built from source at install');
    const { dir, ms } = install('source', clientSrcTgz, executorTgz, process.env);
    results.push(`npm install (source build): ${(ms / 1000).toFixed(1)} s`);
    check('the native parts were built from source', () => {
      const f = nativeFiles(dir, process.env);
      const from = join(f.pkg, 'build');
      if (
        f.prebuilds ||
        !f.build ||
        f.addon !== join(from, 'Release', 'sbx_native.node') ||
        f.forkserver !== join(from, 'forkserver', 'sbx-forkserver')
      )
        throw new Error(JSON.stringify(f));
    });
    run(
      'npm',
      ['install', '--no-audit', '--no-fund', '--prefer-offline', 'typescript@~5.9.3', '@types/node@^20.19.0'],
      { cwd: dir },
    );
    consumers(dir, process.env);
  }

  if (!only || only === 'broken-prebuild') {
    log('install 4: a prebuild that does not load here (as on an older glibc) falls back to a source build');
    const broken = repacked(clientTgz, 'broken', (p) =>
      writeFileSync(join(p, 'prebuilds', 'sbx_native-linux-x64', 'node-napi-v8.node'), 'not an ELF file'),
    );
    const { dir, out } = install('broken-prebuild', broken, executorTgz, process.env);
    check('the install says why and builds from source', () => {
      const line = out.split('\n').find((l) => l.includes('@sbx/client: the prebuilt addon does not load here'));
      const f = nativeFiles(dir, process.env);
      if (
        !line?.includes('building them from source') ||
        f.addon !== join(f.pkg, 'build', 'Release', 'sbx_native.node')
      )
        throw new Error(`${out}\n${JSON.stringify(f)}`);
      return line.trim();
    });
    check('npx sbx run -- /bin/echo on the fallback build', () => {
      const r = run('npx', ['sbx', 'run', '--', '/bin/echo', 'echo after the fallback'], { cwd: dir }).out;
      if (!r.includes('echo after the fallback')) throw new Error(r);
    });
  }

  if (!only || only === 'ignore-scripts') {
    log(
      'install 5: --ignore-scripts (npm 11 runs no dependency install script unless allowed): the prebuilds work as they are',
    );
    const { dir } = install('ignore-scripts', clientTgz, executorTgz, noToolchain, false, ['--ignore-scripts']);
    check('ESM consumer on the prebuilds, no install script run', () => {
      const out = run(process.execPath, ['esm.mjs'], { cwd: dir, env: noToolchain }).out;
      if (!out.includes('esm consumer: OK, exit code 0')) throw new Error(out);
    });
    log('install 6: --ignore-scripts and no prebuild: the load error names the exact command, which works');
    const src = install('ignore-scripts-source', clientSrcTgz, executorTgz, process.env, false, ['--ignore-scripts']);
    let command;
    check('the load error names the exact build command', () => {
      const r = run(process.execPath, ['esm.mjs'], { cwd: src.dir, expectFail: true }).out;
      command = /^\s+(npm_config_build_from_source=true node \S+install\.mjs)$/m.exec(r)?.[1];
      if (!command) throw new Error(r);
      return command.replace(work, '<tmp>');
    });
    check('that command builds the native parts, then the consumer runs', () => {
      run('sh', ['-c', command], { cwd: src.dir });
      const out = run(process.execPath, ['esm.mjs'], { cwd: src.dir }).out;
      if (!out.includes('esm consumer: OK, exit code 0')) throw new Error(out);
    });
  }
} catch (err) {
  failed++;
  log(`FAIL ${err.message}`);
} finally {
  for (const r of results) log(r);
  if (!keep) rmSync(work, { recursive: true, force: true });
}
console.log(`pack: ${passed} passed, ${failed} failed`);
process.exitCode = failed === 0 ? 0 : 1;
