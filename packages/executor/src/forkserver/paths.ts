// paths.ts: where sbx's own executables are. They ship with @sbx/client's native parts (its
// prebuilds or its source build), next to the addon they were built with. SBX_FORKSERVER_PATH overrides.
import { nativeExecutablePath } from '@sbx/client/internal';

export function forkserverPath(): string {
  return process.env.SBX_FORKSERVER_PATH || nativeExecutablePath('forkserver/sbx-forkserver');
}
