// bin/sbx.js loads the CLI bundle with the V8 code cache the build made (bin/cli-loader.js): the
// cache must exist for the Node that built it and be accepted by its V8; a Node without a cache
// of its own must still run the CLI (from a plain compile).
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Script } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { findLine } from '../native/node-lines.mjs';
import { repoRoot } from './helpers.js';

const pkg = join(repoRoot, 'packages', 'executor');
const bundle = join(pkg, 'dist', 'cli-bundle.cjs');
const sbxBin = join(pkg, 'bin', 'sbx.js');

describe('the CLI loader', () => {
  it("the build left a code cache for this Node's V8, and V8 accepts it for the bundle", () => {
    const cachedData = readFileSync(join(pkg, 'dist', `cli-bundle.v8-${process.versions.v8}.cache`));
    const wrapped = `(function (exports, require, module, __filename, __dirname) {${readFileSync(bundle, 'utf8')}\n})`;
    const script = new Script(wrapped, { filename: bundle, cachedData });
    expect(script.cachedDataRejected).toBe(false);
  });

  // Node 22 and 24 come from the node-lines cache (CI installs them, so there they must be found);
  // this Node built the only code cache.
  for (const major of [22, 24]) {
    const line = findLine(major);
    if (process.env.CI) expect(line, `node ${major} in the node-lines cache`).toBeDefined();
    it.skipIf(!line || line.node === process.execPath)(
      `Node ${major} runs the CLI without a code cache of its own`,
      () => {
        const r = spawnSync(line!.node, [sbxBin, 'run', '--', '/bin/echo', 'hello'], {
          encoding: 'utf8',
          timeout: 30_000,
        });
        expect(r.stderr).toBe('');
        expect(r).toMatchObject({ status: 0, stdout: 'hello\n' });
      },
    );
  }
});
