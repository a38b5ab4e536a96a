// paths.ts: where sbx's own executables are. SBX_FORKSERVER_PATH overrides.
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

/** The repository's native build directory (source checkouts). */
export const nativeBuildDir = join(root, 'native', 'build');

export function forkserverPath(): string {
  const candidates = [join(nativeBuildDir, 'forkserver', 'sbx-forkserver'), join(nativeBuildDir, 'Release', 'sbx-forkserver')];
  if (process.env.SBX_FORKSERVER_PATH) candidates.unshift(process.env.SBX_FORKSERVER_PATH);
  const found = candidates.find((p) => existsSync(p));
  if (!found) {
    throw new Error(`sbx: the forkserver executable sbx-forkserver was not found. Tried:\n  ${candidates.join('\n  ')}\nBuild it with \`pnpm install\` (or \`node native/build.mjs\`).`);
  }
  return found;
}
