// @sbx/executor/testing: the helper and the matchers on real sandboxes. A violation fails with
// its syscall, its arguments and a policy line; applying the suggested lines makes the run clean.
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { PolicyBuilder, type Violation } from '@sbx/executor';
import {
  SandboxTestError,
  describeResult,
  expectNoViolation,
  runSandboxed,
  sbxMatchers,
  suggestPolicyLine,
} from '@sbx/executor/testing';
import '@sbx/executor/testing/vitest';
import { isolationPolicy, testcase } from './helpers.js';

/** A default-kill policy over the system directories, plus `lines` (suggested builder calls). */
function tightPolicy(lines: string[] = []) {
  let b = new PolicyBuilder().allowDynamicStartup().allowWrite().allowExit();
  for (const d of ['/usr', '/bin', '/lib', '/lib64']) if (existsSync(d)) b = b.addDirectory(d);
  for (const line of lines) b = new Function('b', `return b${line};`)(b) as PolicyBuilder;
  return b.build();
}

function violation(fields: Partial<Violation>): Violation {
  return {
    kind: 'syscall',
    syscall: 'openat',
    nr: 257,
    arch: 'x86_64',
    args: [0n, 0n, 0n, 0n, 0n, 0n],
    pid: 1,
    ...fields,
  };
}

describe('runSandboxed() and the matchers', () => {
  it('an allowed program runs without violation; the matcher and expectNoViolation() pass', async () => {
    const result = await runSandboxed(['/bin/echo', 'hi'], tightPolicy([".allowSyscall('ioctl')"]));
    expect(result).toRunWithoutViolation();
    expect(expectNoViolation(result)).toBe(result);
    expect(result.exitCode).toBe(0);
  });

  it('a violation fails with the syscall, its arguments and the suggested line; applying the lines makes it clean', async () => {
    const lines: string[] = [];
    let rounds = 0;
    for (let round = 0; round < 25; round++) {
      const result = await runSandboxed(['/bin/ls', '/'], tightPolicy(lines));
      if (result.status === 'OK') break;
      rounds++;
      expect(result).toViolatePolicy();
      const v = result.violation!;
      const message = (() => {
        try {
          expect(result).toRunWithoutViolation();
        } catch (err) {
          return (err as Error).message;
        }
        throw new Error('toRunWithoutViolation() passed on a violation');
      })();
      expect(message).toContain(`sandbox violation: ${v.syscall}(0x${v.args[0]!.toString(16)}, `);
      expect(message).toContain(`allow it with:   .allowSyscall('${v.syscall}')`);
      expect(message).toContain(`in a policy file: "allow": ["${v.syscall}"]`);
      expect(() => expectNoViolation(result)).toThrow(SandboxTestError);
      lines.push(suggestPolicyLine(v).builder!);
    }
    expect(rounds).toBeGreaterThan(0);
    expect(await runSandboxed(['/bin/ls', '/'], tightPolicy(lines))).toRunWithoutViolation();
  });

  it('an always-denied syscall says no policy line allows it', async () => {
    const result = await runSandboxed([testcase('violations'), 'ptrace'], isolationPolicy());
    expect(result).toViolatePolicy('ptrace');
    expect(result).not.toViolatePolicy('openat');
    const text = describeResult(result);
    expect(text).toMatch(/why: ptrace is always denied by sbx here \(.+\); no policy line allows it/);
    expect(text).not.toContain('allow it with');
  });

  it('a timeout is not a clean run either, and says so', async () => {
    const result = await runSandboxed(['/bin/sleep', '5'], isolationPolicy(), { limits: { walltime: 0.2 } });
    expect(result).not.toRunWithoutViolation();
    expect(() => expectNoViolation(result)).toThrow(/sandbox result: TIMEOUT/);
  });

  it('the matchers name a value that is not a Result', async () => {
    expect(() => sbxMatchers.toRunWithoutViolation(Promise.resolve())).toThrow(
      /expected a sbx Result \(await the run first\), got object/,
    );
    await expect(runSandboxed([], isolationPolicy())).rejects.toThrow(/argv must be a non-empty array/);
  });
});

describe('suggestPolicyLine()', () => {
  it('spells network rules the way the builder and policy files do', () => {
    expect(
      suggestPolicyLine(
        violation({ kind: 'network', syscall: 'connect', address: '10.1.2.3:443', rule: 'no allow rule matches' }),
      ),
    ).toMatchObject({
      builder: '.allowIPv4("10.1.2.3/32", 443)',
      policyFile: '"network": { "mode": "rules", "allow": ["10.1.2.3/32:443"] }',
    });
    expect(suggestPolicyLine(violation({ kind: 'network', syscall: 'connect', address: '[::1]:80' }))).toMatchObject({
      builder: '.allowIPv6("::1/128", 80)',
      policyFile: '"network": { "mode": "rules", "allow": ["[::1/128]:80"] }',
    });
    expect(
      suggestPolicyLine(violation({ kind: 'network', syscall: 'connect', address: 'unix:/run/x.sock' })).builder,
    ).toBe('.allowUnixSocket("/run/x.sock")');
    expect(
      suggestPolicyLine(
        violation({ kind: 'network', syscall: 'connect', address: '10.0.0.1:80', rule: 'denied by deny 10.0.0.0/8' }),
      ),
    ).toEqual({
      note: 'the destination is denied by deny 10.0.0.0/8: a deny rule wins over every allow, remove or narrow it',
    });
  });

  it('the suggested network lines are valid builder calls', () => {
    for (const address of ['10.1.2.3:443', '[::1]:80', 'unix:/run/x.sock']) {
      const line = suggestPolicyLine(violation({ kind: 'network', syscall: 'connect', address })).builder!;
      const b = new Function('b', `return b${line};`)(new PolicyBuilder().allowExit()) as PolicyBuilder;
      expect(b.problems).toEqual([]);
    }
  });

  it('foreign ABIs, clone with namespace flags and unnamed numbers', () => {
    expect(
      suggestPolicyLine(violation({ kind: 'arch', arch: 'i386', syscall: 'unknown(11)', nr: 11 })).builder,
    ).toBeUndefined();
    const CLONE_NEWUSER = 0x10000000n;
    expect(
      suggestPolicyLine(violation({ syscall: 'unshare', nr: 272, args: [CLONE_NEWUSER, 0n, 0n, 0n, 0n, 0n] })).note,
    ).toMatch(/always denied/);
    expect(suggestPolicyLine(violation({ syscall: 'unknown(999)', nr: 999 }))).toMatchObject({
      builder: '.allowSyscall(999)',
    });
  });
});
