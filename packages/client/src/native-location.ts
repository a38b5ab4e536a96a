// native-location.ts: where this package's native parts are. One place for the addon and the
// executables the executor runs, so that both always come from the same build:
//   <package>/build/...      a source build (npm's install-time fallback; in the monorepo a link
//                            to native/build, made by native/build.mjs)
//   <package>/prebuilds/...  the prebuilt linux-x64 parts shipped in the npm package
// pkg-prebuilds (made for cmake-js, Node-API aware) resolves the addon in that order; executables
// sit next to the addon in a prebuild directory, and at build/<cmake subdir>/<name> in a build.
import { createRequire } from 'node:module';
import { existsSync, readdirSync, readFileSync, realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { basename, dirname, join, sep } from 'node:path';
import { NativeLoadError } from './errors.js';

/** The options pkg-prebuilds names the addon with (shared with scripts/install.mjs). */
interface BindingOptions {
  name: string;
  napi_versions: number[];
}

type ResolveBinding = (
  basePath: string,
  options: BindingOptions,
  verifyPrebuild: boolean,
  throwOnMissing: boolean,
) => string | null;

let root: string | undefined;

/** The @sbx/client package directory. Resolved by name rather than from this module's own
 *  location, because the sbx CLI bundle inlines this module into @sbx/executor's dist/. */
export function clientPackageRoot(): string {
  root ??= nearbyClientPackage() ?? dirname(createRequire(import.meta.url).resolve('@sbx/client/package.json'));
  return root;
}

/**
 * The places module resolution would look first, checked directly (resolve() costs ~2 ms of the
 * CLI's start-up): this module's own package (dist/..), and from the CLI bundle in
 * @sbx/executor's dist/, that package's own node_modules.
 */
function nearbyClientPackage(): string | undefined {
  const pkg = fileURLToPath(new URL('..', import.meta.url));
  for (const dir of [pkg, join(pkg, 'node_modules', '@sbx', 'client')]) {
    try {
      if ((JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string }).name === '@sbx/client')
        return realpathSync(dir);
    } catch {
      // not there: the next place, then resolve()
    }
  }
  return undefined;
}

function packageRequire(): NodeJS.Require {
  return createRequire(join(clientPackageRoot(), 'package.json'));
}

let addonPath: string | undefined;

/** binding-options.cjs's `name` (test/native-location.test.ts keeps them equal). */
export const ADDON_NAME = 'sbx_native';

/** The addon file pkg-prebuilds picks: a source build (build/Debug, build/Release) first, then the matching prebuild.
 *  Throws (listing the paths tried) when there is none. */
export function packagedAddonPath(): string {
  addonPath ??= localBuild() ?? findAddon();
  return addonPath;
}

/**
 * A source build, which pkg-prebuilds would pick first anyway (build/Debug, then build/Release),
 * found without loading it: the CLI starts ~3 ms sooner. Prebuilds are left to pkg-prebuilds.
 */
function localBuild(): string | undefined {
  for (const dir of ['Debug', 'Release']) {
    const p = join(clientPackageRoot(), 'build', dir, `${ADDON_NAME}.node`);
    if (existsSync(p)) return p;
  }
  return undefined;
}

function findAddon(): string {
  const req = packageRequire();
  const options = req('./binding-options.cjs') as BindingOptions;
  const resolveBinding = (req('pkg-prebuilds') as { resolve: ResolveBinding }).resolve;
  const found = resolveBinding(clientPackageRoot(), options, false, true);
  if (!found) throw new NativeLoadError(`sbx: no ${options.name}.node in ${clientPackageRoot()}`);
  return found;
}

/**
 * The custom-fork binding for NODE_MODULE_VERSION `abi` (fork_binding.cc, built per Node ABI):
 * sbx_fork-node-v<abi>.node next to the addon, in a source build and in a prebuild alike.
 * SBX_NATIVE_PATH moves it along with the addon.
 */
export function forkAddonPath(abi: string): string {
  return join(dirname(process.env.SBX_NATIVE_PATH || packagedAddonPath()), `sbx_fork-node-v${abi}.node`);
}

/** The ABIs of the fork bindings next to `forkAddonPath()`'s file (for error messages). */
export function availableForkAbis(nextTo: string): string[] {
  try {
    return readdirSync(dirname(nextTo))
      .map((f) => /^sbx_fork-node-v(\d+)\.node$/.exec(f)?.[1])
      .filter((a): a is string => a !== undefined)
      .sort((a, b) => Number(a) - Number(b));
  } catch {
    return [];
  }
}

/**
 * An executable of this package's native build, named by its path in the CMake build tree
 * ("forkserver/sbx-forkserver"). It comes from the same place as the addon: build/<buildPath>
 * when the addon is a source build, else the prebuild directory (next to the addon file).
 */
export function nativeExecutablePath(buildPath: string): string {
  const addon = packagedAddonPath();
  const buildDir = join(clientPackageRoot(), 'build') + sep;
  const path = addon.startsWith(buildDir) ? join(buildDir, buildPath) : join(dirname(addon), basename(buildPath));
  if (!existsSync(path)) {
    throw new NativeLoadError(
      `sbx: ${basename(buildPath)} was not found at ${path} (next to the addon ${addon}). ` +
        'Reinstall @sbx/client, or rebuild with `npm rebuild @sbx/client --build-from-source`.',
    );
  }
  return path;
}
