#!/usr/bin/env node
// Bundles the sbx CLI (dist/cli/main.js and everything it imports, @sbx/client included) into a few
// files: Node then reads and compiles a handful of modules instead of ~40, which is a third of the
// CLI's own start-up cost. Code splitting keeps each command (run, policy, doctor) in its own
// chunk, loaded only when that command runs. msgpackr and ajv stay external (loaded lazily, if ever).
import { build } from 'esbuild';
import { readdirSync, rmSync } from 'node:fs';
import { builtinModules, createRequire } from 'node:module';
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
  // Less source for V8 to scan at start (comments go; names stay, for readable stack traces).
  minifyWhitespace: true,
  minifySyntax: true,
  plugins: [lazyBuiltins()],
  logLevel: 'warning',
});

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
