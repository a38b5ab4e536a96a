// named-fds.ts: the fds an executor mapped under a name (ipc.mapFd(fd, 'name'), Sandbox2's
// MapFd(local, name)), looked up by the sandboxee. The executor passes the names in one
// environment variable, SBX_FD_MAPPINGS: `name=fd` pairs joined by commas (docs/wire-protocol.md).
import { ClientError } from './errors.js';

/** The environment variable that carries the name table. */
export const FD_MAPPINGS_ENV = 'SBX_FD_MAPPINGS';

const ENTRY = /^([A-Za-z0-9_.-]{1,64})=([0-9]{1,7})$/;

/** The name table of this process (empty when the executor mapped no named fd). */
export function mappedFds(env: NodeJS.ProcessEnv = process.env): ReadonlyMap<string, number> {
  const text = env[FD_MAPPINGS_ENV];
  const table = new Map<string, number>();
  if (!text) return table;
  for (const entry of text.split(',')) {
    const m = ENTRY.exec(entry);
    if (!m) throw new ClientError('PROTOCOL', `${FD_MAPPINGS_ENV}: ${JSON.stringify(entry)} is not a name=fd entry`);
    table.set(m[1]!, Number(m[2]));
  }
  return table;
}

/** Whether the executor mapped a fd under `name`. */
export function hasMappedFd(name: string): boolean {
  checkName(name, 'hasMappedFd');
  return mappedFds().has(name);
}

/** The fd the executor mapped under `name`; ClientError NOT_MAPPED when there is none. */
export function getMappedFd(name: string): number {
  checkName(name, 'getMappedFd');
  const table = mappedFds();
  const fd = table.get(name);
  if (fd === undefined) {
    const known = [...table.keys()];
    throw new ClientError(
      'NOT_MAPPED',
      `getMappedFd: no fd is mapped under "${name}" (${known.length ? `mapped: ${known.join(', ')}` : 'the executor mapped no named fd'})`,
    );
  }
  return fd;
}

function checkName(name: unknown, method: string): void {
  if (typeof name !== 'string' || name.length === 0)
    throw new TypeError(`${method}(name): name must be a non-empty string, got ${String(name)}`);
}
