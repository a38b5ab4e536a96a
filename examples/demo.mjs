#!/usr/bin/env node
// pnpm demo: runs real programs in real sandboxes and prints their Results. Builds on first use.
import { existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..');
if (
  !existsSync(join(root, 'packages', 'executor', 'dist', 'index.js')) ||
  !existsSync(join(root, 'native', 'build', 'Release', 'sbx_native.node'))
) {
  console.log('demo: first run, installing and building (pnpm install)...');
  const r = spawnSync('pnpm', ['install'], { cwd: root, stdio: 'inherit' });
  if (r.error) {
    console.error(`demo: cannot run pnpm (${r.error.message}); install it with: npm install -g pnpm`);
    process.exit(1);
  }
  if (r.status !== 0) process.exit(r.status ?? 1);
}

const { Executor, PolicyBuilder, Sandbox } = await import('@sbx/executor');

function systemView(b) {
  for (const d of ['/usr', '/bin', '/lib', '/lib64']) if (existsSync(d)) b.addDirectory(d);
  return b
    .addDirectory('/proc')
    .addFile('/dev/null', { writable: true })
    .addTmpfs('/tmp', { sizeBytes: 1 << 20 });
}

async function show(title, argv, policy, limits = { walltime: 5 }) {
  console.log(`\n== ${title}\n$ ${argv.join(' ')}`);
  const result = await new Sandbox(new Executor(argv[0], argv, { limits }), policy).run();
  console.log(`-> ${result.toString()}`);
}

// 1. An ordinary program under a tight policy: it sees only the system directories.
await show(
  'a shell in a sandbox: uid 1000, its own pid 1, only lo, a read-only /usr',
  [
    '/bin/sh',
    '-c',
    'echo "uid=$(id -u) pid=$$ host=$(cat /proc/sys/kernel/hostname)"; ls /sys/class/net 2>/dev/null || cat /proc/net/dev | tail -n +3 | cut -d: -f1; touch /usr/x 2>&1 | head -1',
  ],
  systemView(new PolicyBuilder().defaultAction('allow')).build(),
);

// 2. A violation: ptrace is always denied; the monitor reports the syscall and kills the tree.
await show(
  'a forbidden syscall is reported, with its name and arguments',
  ['/bin/sh', '-c', 'echo about to unshare a user namespace; exec unshare -U true'],
  systemView(new PolicyBuilder().defaultAction('allow')).build(),
);

// 3. The walltime limit.
await show(
  'the wall-time limit ends a sleeping tree',
  ['/bin/sh', '-c', 'sleep 100 & sleep 100'],
  systemView(new PolicyBuilder().defaultAction('allow')).build(),
  { walltime: 0.5 },
);
