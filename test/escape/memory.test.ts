// What bounds a sandbox's memory beyond RLIMIT_AS (issue 18 item 6): memfd and tmpfs pages are
// shared memory that the address-space limit does not count. The CLI's default policy has no
// memfd_create; a memory limit also limits the size of each file (RLIMIT_FSIZE); a memory cgroup,
// where one is delegated, counts everything (docs/security.md "What bounds a sandbox's memory").
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '../helpers.js';
import { executorStaysUnharmed, lines, probe, probePath } from './harness.js';

executorStaysUnharmed();

const MiB = 1 << 20;

describe('memory past RLIMIT_AS', () => {
  it('with rlimitAs 64 MiB a memfd stops at 64 MiB (EFBIG), not at the 256 MiB asked for', async () => {
    const c = await probe(['memfd-fill', '256'], { executor: { limits: { rlimitAs: 64 * MiB } } });
    expect(c.result.status, c.result.toString()).toBe('OK');
    expect(lines(c)).toEqual(['memfd_create: calling', 'memfd-fill: 64 MiB EFBIG']);
  });

  it('an explicit rlimitFsize is kept', async () => {
    const c = await probe(['memfd-fill', '48'], {
      executor: { limits: { rlimitAs: 64 * MiB, rlimitFsize: 32 * MiB } },
    });
    expect(lines(c)).toEqual(['memfd_create: calling', 'memfd-fill: 32 MiB EFBIG']);
  });

  it('sbx run --rlimit-as 64M: a memfd under the default policy stops at 64 MiB, not at the 256 MiB asked for', () => {
    const r = spawnSync(
      process.execPath,
      [
        join(repoRoot, 'packages', 'executor', 'bin', 'sbx.js'),
        'run',
        '--rlimit-as',
        '64M',
        '--',
        probePath(),
        'memfd-fill',
        '256',
      ],
      { encoding: 'utf8', timeout: 60_000 },
    );
    expect(r.stdout).toBe('memfd_create: calling\nmemfd-fill: 64 MiB EFBIG\n');
  });
});
