#!/usr/bin/env node
// Runs the integration suite (test/) once more as an ordinary user, so that every sandbox
// promise is checked both as root and unprivileged (through user namespaces). As root it drops
// to nobody with setpriv; as an ordinary user the main run already was the unprivileged one.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..');
if (process.getuid() !== 0) {
  console.log('test:unprivileged: already running as uid %d; the main run covered it', process.getuid());
  process.exit(0);
}
const probe = spawnSync('setpriv', ['--version'], { encoding: 'utf8' });
if (probe.error) {
  console.error('test:unprivileged: setpriv (util-linux) is required to drop to nobody: apt-get install util-linux');
  process.exit(1);
}
const vitest = join(root, 'node_modules', 'vitest', 'vitest.mjs');
const r = spawnSync(
  'setpriv',
  [
    '--reuid=65534',
    '--regid=65534',
    '--clear-groups',
    '--',
    process.execPath,
    vitest,
    'run',
    '--configLoader',
    'runner',
    'test/',
  ],
  { cwd: root, stdio: 'inherit', env: { ...process.env, HOME: '/tmp', SBX_TEST_UNPRIVILEGED: '1' } },
);
if (r.status !== 0) process.exit(r.status ?? 1);
// The isolation suites once more with the spawn pool on (vitest.pooled.config.ts), as nobody.
const pooled = spawnSync(
  'setpriv',
  [
    '--reuid=65534',
    '--regid=65534',
    '--clear-groups',
    '--',
    process.execPath,
    vitest,
    'run',
    '--configLoader',
    'runner',
    '-c',
    'vitest.pooled.config.ts',
  ],
  { cwd: root, stdio: 'inherit', env: { ...process.env, HOME: '/tmp', SBX_TEST_UNPRIVILEGED: '1' } },
);
process.exit(pooled.status ?? 1);
