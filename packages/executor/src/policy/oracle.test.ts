// libseccomp as an oracle: the same rules compiled by libseccomp (native/testcases/seccomp_oracle)
// and by sbx must give the same verdict for every syscall number. sbx's evaluator runs both
// programs. Skips, saying why, when the oracle binary has not been built.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ALLOW, ARG, AUDIT_ARCH_I386, AUDIT_ARCH_X86_64, JEQ, LABEL } from './bpf.js';
import type { BpfInsn, SockFilter } from './bpf.js';
import { compilePolicy } from './compiler.js';
import { ALWAYS_DENIED } from './denials.js';
import { evaluate, validateProgram } from './evaluator.js';
import { PolicyBuilder } from './policy-builder.js';
import { SYSCALL_TABLES } from './syscalls.js';
import { random as rng } from '../../../../test/prng.js';

const here = dirname(fileURLToPath(import.meta.url));
const nativeDir = resolve(here, '..', '..', '..', '..', 'native');
const candidates = [
  process.env['SBX_SECCOMP_ORACLE'],
  join(nativeDir, 'build', 'testcases', 'seccomp_oracle'),
  join(nativeDir, 'build', 'testcases', 'Release', 'seccomp_oracle'),
  join(nativeDir, 'build', 'Release', 'seccomp_oracle'),
  join(nativeDir, 'build-asan', 'testcases', 'seccomp_oracle'),
  '/tmp/sbx-native-build/testcases/seccomp_oracle',
].filter((p): p is string => !!p);
const oracle = candidates.find((p) => existsSync(p));

interface OracleRules {
  text: string;
  builder: PolicyBuilder;
  argValues: Map<number, bigint[]>;
}

/** Rules both compilers understand the same way; conditional always-on denials stay out. */
function randomRules(seed: number, count: number): OracleRules {
  const r = rng(seed);
  const skip = new Set([...ALWAYS_DENIED.map((d) => d.name), 'execveat']);
  const names = [...SYSCALL_TABLES.x86_64.byName.entries()].filter(([n]) => !skip.has(n));
  const lines: string[] = ['default kill'];
  const b = new PolicyBuilder({ arch: 'x86_64' });
  // sbx answers these with ENOSYS whatever the rules; tell libseccomp the same.
  for (const n of ['clone3', 'io_uring_setup', 'io_uring_enter', 'io_uring_register'])
    lines.push(`errno ${SYSCALL_TABLES.x86_64.byName.get(n)} 38`);
  const used = new Set<number>();
  const argValues = new Map<number, bigint[]>();
  const values = [0n, 1n, 5n, 0xffffffffn, 0x100000000n, 0xdeadbeef00000001n, 0xffffffffffffffffn];
  for (let i = 0; i < count; i++) {
    const [name, nr] = names[Math.floor(r() * names.length)]!;
    if (used.has(nr)) continue;
    used.add(nr);
    const k = r();
    if (k < 0.5) {
      lines.push(`allow ${nr}`);
      b.allowSyscall(name);
    } else if (k < 0.75) {
      const e = 1 + Math.floor(r() * 133);
      lines.push(`errno ${nr} ${e}`);
      b.blockSyscallWithErrno(name, e);
    } else {
      const rule: BpfInsn[] = [];
      const vs: bigint[] = [];
      const conds = 1 + Math.floor(r() * 3);
      for (let c = 0; c < conds; c++) {
        const idx = Math.floor(r() * 6);
        const v = values[Math.floor(r() * values.length)]!;
        lines.push(`arg-eq ${nr} ${idx} 0x${v.toString(16)}`);
        rule.push(ARG(idx), JEQ(v, 'ok'));
        vs.push(v);
      }
      rule.push({ kind: 'ja', target: 'end' }, LABEL('ok'), ALLOW, LABEL('end'));
      b.addPolicyOnSyscall(name, rule);
      argValues.set(nr, vs);
    }
  }
  return { text: `${lines.join('\n')}\n`, builder: b, argValues };
}

function runOracle(text: string): SockFilter[] {
  const out = execFileSync(oracle!, [], { input: text, encoding: 'utf8' });
  return out
    .trim()
    .split('\n')
    .map((l) => {
      const [code, jt, jf, k] = l.split(' ').map(Number) as [number, number, number, number];
      return { code, jt, jf, k };
    });
}

describe.skipIf(!oracle)('libseccomp oracle', () => {
  for (const seed of [1, 2, 3, 4]) {
    it(`gives libseccomp's verdicts for every syscall number (seed ${seed})`, () => {
      const { text, builder, argValues } = randomRules(seed, 120);
      const theirs = runOracle(text);
      expect(validateProgram(theirs)).toEqual([]);
      const ours = compilePolicy(builder.build(), { execPrologue: false }).insns;
      let compared = 0;
      const cmp = (arch: number, nr: number, args: bigint[]): void => {
        const a = evaluate(ours, { arch, nr, args });
        const b = evaluate(theirs, { arch, nr, args });
        if (a.ret !== b.ret) {
          throw new Error(
            `nr ${nr} arch 0x${arch.toString(16)} args [${args.join(', ')}]: sbx ${a.action}(${a.data}), libseccomp ${b.action}(${b.data})`,
          );
        }
        compared++;
      };
      for (let nr = 0; nr <= 470; nr++) {
        cmp(AUDIT_ARCH_X86_64, nr, [0n, 0n, 0n, 0n, 0n, 0n]);
        for (const v of argValues.get(nr) ?? []) {
          for (let idx = 0; idx < 6; idx++) {
            const args = [0n, 0n, 0n, 0n, 0n, 0n];
            args[idx] = v;
            cmp(AUDIT_ARCH_X86_64, nr, args);
            args[idx] = v ^ 1n;
            cmp(AUDIT_ARCH_X86_64, nr, args);
            args[idx] = v ^ (1n << 40n);
            cmp(AUDIT_ARCH_X86_64, nr, args);
          }
        }
        cmp(AUDIT_ARCH_I386, nr, [0n, 0n, 0n, 0n, 0n, 0n]);
      }
      for (const nr of [0x40000000, 0x40000001, 0x7fffffff, 0xffffffff])
        cmp(AUDIT_ARCH_X86_64, nr, [0n, 0n, 0n, 0n, 0n, 0n]);
      expect(compared).toBeGreaterThan(900);
    });
  }
});

if (!oracle) {
  describe('libseccomp oracle', () => {
    it.skip(`skipped: seccomp_oracle not found (looked in ${candidates.join(', ')}); install libseccomp-dev and build native/`, () => {});
  });
}
