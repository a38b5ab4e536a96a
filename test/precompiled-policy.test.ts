// `sbx run`'s default rules ship compiled (packages/executor/src/cli/precompiled-policy.ts): the
// built file must be what the builder and the compiler make now, the policy the CLI builds with it
// must equal the one it builds without it, and only the flag-free default may take it.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildDefault, defaultPolicy, type RunPolicyOptions } from '../packages/executor/dist/cli/default-policy.js';
import {
  makePrecompiledDefault,
  PRECOMPILED_FILE,
  withPrecompiledRules,
} from '../packages/executor/dist/cli/precompiled-policy.js';
import { compilePolicy } from '../packages/executor/dist/policy/compiler.js';
import { EXEC_FD_TARGET } from '../packages/executor/dist/forkserver/protocol.js';
import { PolicyBuilder } from '@sbx/executor';
import { repoRoot } from './helpers.js';

const cliDist = join(repoRoot, 'packages', 'executor', 'dist', 'cli');
const sbxBin = join(repoRoot, 'packages', 'executor', 'bin', 'sbx.js');

function options(o: Partial<RunPolicyOptions> = {}): RunPolicyOptions {
  return {
    allow: [],
    errno: [],
    mounts: [],
    tmpfs: [],
    network: { mode: 'none', allow: [], deny: [], dns: [], unix: [] },
    ...o,
  };
}

describe("sbx run's precompiled default rules", () => {
  it('the built file is what this builder and compiler make', () => {
    const shipped = JSON.parse(readFileSync(join(cliDist, PRECOMPILED_FILE), 'utf8'));
    expect(shipped).toEqual(JSON.parse(JSON.stringify(makePrecompiledDefault())));
  });

  it('the flag-free default equals the policy built and compiled in full', () => {
    for (const binary of [null, '/bin/true']) {
      const fast = defaultPolicy(binary, options());
      const full = buildDefault(binary, options(), {}, true);
      expect(fast.toJSON()).toEqual(full.toJSON());
      for (const monitor of [true, false]) {
        const ahead = compilePolicy(fast, { monitor, execFd: EXEC_FD_TARGET });
        const now = compilePolicy(full, { monitor, execFd: EXEC_FD_TARGET, cache: false });
        expect(ahead.cached).toBe(true); // taken from the file, not compiled
        expect(Buffer.from(ahead.program).equals(Buffer.from(now.program))).toBe(true);
      }
    }
  });

  it('flags that change the rules build and compile in full', () => {
    const cases: Array<[Partial<RunPolicyOptions>, { isolation?: 'landlock' }]> = [
      [{ allow: ['modify_ldt'] }, {}],
      [{ errno: [['uname', 'EPERM']] }, {}],
      [{ network: { mode: 'host', allow: [], deny: [], dns: [], unix: [] } }, {}],
      [{}, { isolation: 'landlock' }],
    ];
    for (const [o, view] of cases) {
      const p = defaultPolicy(null, options(o), view);
      expect(compilePolicy(p, { monitor: true, execFd: EXEC_FD_TARGET }).stats.millis).toBeGreaterThan(0);
      expect(p.toJSON()).toEqual(buildDefault(null, options(o), view, true).toJSON());
    }
  });

  it('a view with rules of its own, or with a network, is not joined', () => {
    expect(withPrecompiledRules(new PolicyBuilder().allowSyscall('read').build())).toBeNull();
    expect(withPrecompiledRules(new PolicyBuilder().allowUnrestrictedNetworking().build())).toBeNull();
    expect(withPrecompiledRules(new PolicyBuilder().build())).not.toBeNull();
  });

  it('a fresh `sbx run` takes them (no compile) and still stops a call outside them', () => {
    const ok = spawnSync(process.execPath, [sbxBin, 'run', '--trace', '--', '/bin/true'], {
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(ok.status).toBe(0);
    expect(ok.stderr).toMatch(/executor\s+policy compile \(cached\)/);
    const denied = spawnSync(process.execPath, [sbxBin, 'run', '--', '/usr/bin/unshare', '--user', '/bin/true'], {
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(denied.status).toBe(159);
    expect(denied.stderr).toMatch(/VIOLATION.*unshare/);
  });
});
