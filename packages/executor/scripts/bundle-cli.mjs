#!/usr/bin/env node
// Bundles the sbx CLI (dist/cli/main.js and everything it imports, @sbx/client included) into one
// CommonJS file, dist/cli-bundle.cjs, then saves V8's code cache for it (bin/cli-loader.js):
// Node then reads one file instead of ~40 modules, without its ESM loader, and compiles none of
// what `sbx run` runs. msgpackr and ajv stay external (required lazily, if ever).
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { builtinModules, createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const pkg = join(dirname(fileURLToPath(import.meta.url)), '..');
// The default policy's rules, compiled ahead (dist/cli/default-policy.precompiled.json).
await import('./precompile-default-policy.mjs');
// The previous build's bundle and code caches (one per V8 version) go first.
for (const f of readdirSync(join(pkg, 'dist'))) if (f.startsWith('cli-bundle')) rmSync(join(pkg, 'dist', f));

const outfile = join(pkg, 'dist', 'cli-bundle.cjs');
await build({
  entryPoints: [join(pkg, 'dist', 'cli', 'main.js')],
  // Straight into dist/, next to the unbundled modules: the addon and the forkserver are found
  // relative to the module's own URL.
  outfile,
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  external: ['msgpackr', 'ajv'],
  // The modules' import.meta.url is the bundle's own file URL.
  define: { 'import.meta.url': '__sbxModuleUrl' },
  banner: { js: 'var __sbxModuleUrl = require("node:url").pathToFileURL(__filename).href;' },
  // Less source for V8 to scan at start (comments go; names stay, for readable stack traces).
  minifyWhitespace: true,
  minifySyntax: true,
  plugins: [lazyBuiltins()],
  logLevel: 'warning',
});
// bin/cli-loader.js runs the bundle as a vm.Script, where import() has no loader to call.
if (/\bimport\(/.test(readFileSync(outfile, 'utf8')))
  throw new Error('bundle-cli: dist/cli-bundle.cjs contains import(): make that import static or a require()');

// The code cache: one real `sbx run -- /bin/true`, so the cache holds what a run compiles. Where
// this host cannot run a sandbox, the run fails and the cache still holds the top-level code.
const loader = join(pkg, 'bin', 'cli-loader.js');
const warm = spawnSync(
  process.execPath,
  ['-e', `require(${JSON.stringify(loader)}).writeCodeCache(['run', '--', '/bin/true'])`],
  { stdio: 'pipe', timeout: 60_000 },
);
const cache = join(pkg, 'dist', `cli-bundle.v8-${process.versions.v8}.cache`);
if (!existsSync(cache))
  console.warn(
    `bundle-cli: no code cache was written (the CLI starts slower): ${warm.stderr?.toString().trim() || warm.error}`,
  );

/**
 * Node's built-in modules through require() instead of `import`, loaded on first call.
 *
 * An ESM `import ... from 'node:fs'` makes Node build the module's ESM facade, which reads every
 * export, getters included: fs's ReadStream and promises getters load the streams and
 * fs/promises (with readline), crypto's webcrypto getter loads all of WebCrypto. And every
 * imported builtin is loaded at start even when the command never calls it (net for --net only,
 * tty, worker_threads). Together that was about a quarter of `sbx run`'s own start-up.
 * Here each builtin is a small module of the bundle: a lowercase function export (a plain
 * function, e.g. existsSync) becomes a wrapper that requires the builtin on its first call;
 * any other export (a class, an object such as constants) is read when the bundle loads,
 * through require(), which builds no facade.
 */
function lazyBuiltins() {
  const require = createRequire(import.meta.url);
  const builtins = new Set(builtinModules.filter((m) => !m.startsWith('_')));
  const keep = new Set(['module']); // the wrappers' own createRequire
  return {
    name: 'lazy-builtins',
    setup(b) {
      b.onResolve({ filter: /^(node:)?[a-z_/]+$/ }, (args) => {
        const name = args.path.replace(/^node:/, '');
        if (!builtins.has(name) || keep.has(name) || args.namespace === 'lazy-builtin') return undefined;
        return { path: name, namespace: 'lazy-builtin', sideEffects: false };
      });
      b.onLoad({ filter: /.*/, namespace: 'lazy-builtin' }, (args) => {
        const name = args.path;
        const mod = require(`node:${name}`);
        const lines = [
          "import { createRequire } from 'node:module';",
          `let m;\nconst load = () => (m ??= createRequire(import.meta.url)('node:${name}'));`,
          'const pick = (key) => load()[key];',
        ];
        for (const key of Object.keys(mod)) {
          if (!/^[A-Za-z_$][\w$]*$/.test(key) || key === 'default') continue;
          const value = mod[key]; // here at build time, getters too (util.parseArgs is one)
          if (typeof value === 'function' && /^[a-z]/.test(key) && !/^class\b/.test(String(value)))
            lines.push(`export function ${key}(...args) { return load().${key}(...args); }`);
          else lines.push(`export const ${key} = /* @__PURE__ */ pick('${key}');`);
        }
        lines.push('export default /* @__PURE__ */ load();');
        return { contents: lines.join('\n'), loader: 'js', resolveDir: pkg };
      });
    },
  };
}
