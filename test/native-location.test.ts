// Where the native parts come from: package-relative, the addon and the executables from the
// same build. In the repository that is packages/client/build, a link to native/build.
import { spawnSync } from 'node:child_process';
import { realpathSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createRequire } from 'node:module';
import { clientPackageRoot, nativeAddonPath, nativeExecutablePath } from '@sbx/client/internal';
import { ADDON_NAME, availableForkAbis, forkAddonPath } from '../packages/client/src/native-location.js';
import { forkserverPath } from '../packages/executor/src/forkserver/paths.js';
import { nativeBuild, repoRoot } from './helpers.js';

describe('native parts lookup', () => {
  it('finds the addon and the forkserver in the client package build, which is the fresh native/build', () => {
    const pkg = clientPackageRoot();
    expect(pkg).toBe(join(repoRoot, 'packages', 'client'));
    const saved = process.env.SBX_NATIVE_PATH;
    delete process.env.SBX_NATIVE_PATH;
    try {
      expect(nativeAddonPath()).toBe(join(pkg, 'build', 'Release', 'sbx_native.node'));
    } finally {
      if (saved !== undefined) process.env.SBX_NATIVE_PATH = saved;
    }
    expect(realpathSync(nativeAddonPath())).toBe(realpathSync(join(nativeBuild, 'Release', 'sbx_native.node')));
    expect(nativeExecutablePath('forkserver/sbx-forkserver')).toBe(join(pkg, 'build', 'forkserver', 'sbx-forkserver'));
  });

  it("the custom-fork binding of this node's ABI sits next to the addon, and every supported line's is built", () => {
    const path = forkAddonPath(process.versions.modules);
    expect(path).toBe(join(clientPackageRoot(), 'build', 'Release', `sbx_fork-node-v${process.versions.modules}.node`));
    const binding = createRequire(import.meta.url)(path) as { nodeModuleVersion: number; forkingV8Built: () => string };
    expect(String(binding.nodeModuleVersion)).toBe(process.versions.modules);
    expect(binding.forkingV8Built()).toBe(process.versions.v8.split('.').slice(0, 2).join('.'));
    // this node's, always; Node 20, 22 and 24 when their headers are in the node-lines cache (CI)
    expect(availableForkAbis(path)).toContain(process.versions.modules);
    if (process.env.CI) expect(availableForkAbis(path)).toEqual(expect.arrayContaining(['115', '127', '137']));
  });

  it("the fast path's addon name is binding-options.cjs's (what pkg-prebuilds and the install script use)", () => {
    const options = createRequire(join(repoRoot, 'packages', 'client', 'package.json'))('./binding-options.cjs') as {
      name: string;
    };
    expect(ADDON_NAME).toBe(options.name);
  });

  it('names an executable that is not there, and where it looked', () => {
    expect(() => nativeExecutablePath('forkserver/sbx-nothing')).toThrow(
      /sbx-nothing was not found at .*build\/forkserver\/sbx-nothing \(next to the addon/,
    );
  });

  it('SBX_FORKSERVER_PATH overrides the packaged forkserver', () => {
    const saved = process.env.SBX_FORKSERVER_PATH;
    process.env.SBX_FORKSERVER_PATH = '/opt/elsewhere/sbx-forkserver';
    try {
      expect(forkserverPath()).toBe('/opt/elsewhere/sbx-forkserver');
    } finally {
      if (saved === undefined) delete process.env.SBX_FORKSERVER_PATH;
      else process.env.SBX_FORKSERVER_PATH = saved;
    }
    expect(forkserverPath()).toBe(join(clientPackageRoot(), 'build', 'forkserver', 'sbx-forkserver'));
  });

  it('an addon that does not load is one error naming the path and how to get the addon', () => {
    const script =
      "import('@sbx/client/internal').then((m) => m.native()).catch((e) => { console.error(e.message); process.exit(3); })";
    const r = spawnSync(process.execPath, ['-e', script], {
      cwd: repoRoot,
      encoding: 'utf8',
      env: { ...process.env, SBX_NATIVE_PATH: '/nonexistent/sbx_native.node' },
    });
    expect(r.status).toBe(3);
    expect(r.stderr).toContain(
      'sbx: cannot load the native addon sbx_native.node from /nonexistent/sbx_native.node: Cannot find module',
    );
    // the exact command that builds it, for installs that ran no install script (npm 11, pnpm 10)
    expect(r.stderr).toMatch(
      /\n {2}npm_config_build_from_source=true node \/\S+\/packages\/client\/scripts\/install\.mjs\n/,
    );
  });
});
