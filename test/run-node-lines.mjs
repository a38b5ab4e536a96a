#!/usr/bin/env node
// Runs the suites that depend on the Node line (sandbox-me-here with allowNodeRuntime, custom-fork
// mode with its per-ABI binding and its 300-fork soak, the client package's own) under every other
// supported Node line: the npm builds
// of node@22 and node@24 in the node-lines cache (native/node-lines.mjs; `pnpm install` after
// `node native/node-lines.mjs install` builds their fork bindings). vitest runs under that node,
// and so do the sandboxees the tests start (they use process.execPath).
// Usage: node test/run-node-lines.mjs [major...] [-- vitest args]
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { NODE_LINES, findLine, nodeLinesDir, runningMajor } from '../native/node-lines.mjs';

const root = join(import.meta.dirname, '..');
const SUITES = [
  'test/client.test.ts',
  'test/client-runtime.test.ts',
  'test/fork.test.ts',
  'test/fork-trace.test.ts',
  'test/fork-sandboxed-spares.test.ts',
  'test/modules.test.ts',
  'test/modules-limits.test.ts',
  'test/buffer.test.ts',
  'test/buffer-pool.test.ts',
  'packages/client/src',
];

const dash = process.argv.indexOf('--');
const args = dash < 0 ? process.argv.slice(2) : process.argv.slice(2, dash);
const extra = dash < 0 ? [] : process.argv.slice(dash + 1);
const majors = args.length ? args.map(Number) : NODE_LINES.filter((m) => m !== runningMajor);

let failed = 0;
for (const major of majors) {
  const line = findLine(major);
  if (!line) {
    console.error(
      `node-lines: node ${major} is not in ${nodeLinesDir()}: run \`node native/node-lines.mjs install ${major}\`, then \`pnpm run build\` (its fork binding)`,
    );
    failed++;
    continue;
  }
  const binding = join(root, 'packages', 'client', 'build', 'Release', `sbx_fork-node-v${line.abi}.node`);
  if (!existsSync(binding)) {
    console.error(
      `node-lines: no fork binding for node ${line.version} (${binding}): run \`pnpm run build\` with node ${major} in ${nodeLinesDir()}`,
    );
    failed++;
    continue;
  }
  console.log(`\n=== node ${line.version} (NODE_MODULE_VERSION ${line.abi}): ${SUITES.join(' ')}`);
  const t0 = performance.now();
  const r = spawnSync(line.node, [join(root, 'node_modules', 'vitest', 'vitest.mjs'), 'run', ...SUITES, ...extra], {
    cwd: root,
    stdio: 'inherit',
  });
  console.log(
    `=== node ${line.version}: ${r.status === 0 ? 'passed' : 'FAILED'} in ${((performance.now() - t0) / 1000).toFixed(0)} s`,
  );
  if (r.status !== 0) failed++;
}
process.exit(failed ? 1 : 0);
