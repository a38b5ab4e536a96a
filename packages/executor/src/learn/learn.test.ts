// Learning's pure parts: the learning filter's verdicts (what is learned, what stays a
// violation), the learn table, argument rules in policy files, and synthesis and merging.
import { describe, expect, it } from 'vitest';
import { AUDIT_ARCH_X86_64, CLONE_NEW_ANY, SECCOMP_RET_ALLOW, TIOCSTI } from '../policy/bpf.js';
import { compilePolicy } from '../policy/compiler.js';
import { evaluate } from '../policy/evaluator.js';
import { modelVerdict } from '../policy/model.js';
import { syscallNumber } from '../policy/syscalls.js';
import { loadPolicyFile } from '../policy-file/policy-file.js';
import { argRule } from '../policy/arg-rules.js';
import { BASE_SET } from './facts.js';
import { LearnedFacts } from './facts-set.js';
import { learningPolicy } from './learn.js';
import { mergeAlternatives, synthesize } from './synthesize.js';
import { LEARN_RET, encodeLearnTable } from './table.js';
import { formatPolicyFile } from './format.js';

const nr = (name: string): number => syscallNumber('x86_64', name)!;
const data = (name: string, args: number[] = []) => ({ nr: nr(name), arch: AUDIT_ARCH_X86_64, args });

describe('the learning filter', () => {
  const policy = learningPolicy({ librariesFor: [] }, '/bin/true');
  const program = compilePolicy(policy, { monitor: true }).program;
  const ret = (name: string, args: number[] = []) => evaluate(program, data(name, args)).ret;

  it('lets the base set run, sends everything else to the monitor as learning', () => {
    for (const n of BASE_SET) expect(ret(n)).toBe(SECCOMP_RET_ALLOW);
    for (const n of ['openat', 'getcwd', 'socket', 'mmap', 'execve']) expect(ret(n)).toBe(LEARN_RET);
    expect(ret('ioctl', [1, 0x5401])).toBe(LEARN_RET);
    expect(ret('clone', [0x11])).toBe(LEARN_RET);
  });

  it('keeps the always-on denials as violations (never a learning notification)', () => {
    for (const [name, args] of [
      ['ptrace', []],
      ['bpf', []],
      ['clone', [CLONE_NEW_ANY]],
      ['unshare', [0x10000000]],
      ['ioctl', [0, TIOCSTI]],
      ['mount', []],
    ] as const) {
      const r = ret(name, [...args]);
      expect(r, name).not.toBe(LEARN_RET);
      expect(r, name).not.toBe(SECCOMP_RET_ALLOW);
    }
    // model and program agree on the learning verdicts
    for (const [name, args] of [
      ['getcwd', []],
      ['clone', [CLONE_NEW_ANY]],
      ['ioctl', [0, 0x5401]],
    ] as const) {
      expect(modelVerdict(policy, data(name, [...args]), { monitor: true }).ret).toBe(ret(name, [...args]));
    }
  });

  it('encodes the learn table the monitor reads', () => {
    const t = encodeLearnTable(program, 'x86_64', 99);
    expect(t.readUInt32LE(0)).toBe(1);
    expect(t.readUInt32LE(4)).toBe(LEARN_RET);
    expect(t.readUInt32LE(8)).toBe(99);
    expect(t.readUInt32LE(12)).toBe(program.length / 8);
    const masks = t.subarray(20 + program.length);
    expect(masks.length).toBe(t.readUInt32LE(16));
    expect(masks[nr('ioctl')]).toBe(0b10);
    expect(masks[nr('socket')]).toBe(0b11);
    expect(masks[nr('openat')]).toBe(0b100);
    expect(masks[nr('getcwd')]).toBe(0);
    expect(() => encodeLearnTable(new Uint8Array(3), 'x86_64')).toThrow(TypeError);
  });
});

describe('allowWhen argument rules', () => {
  const policy = loadPolicyFile({
    allowWhen: {
      ioctl: [{ arg1: ['0x5401', 21523] }],
      openat: [{ arg2: { onlyFlags: '0x80800' } }],
      socket: [
        { arg0: [1], arg1: [1, 0x80001] },
        { arg0: [2], arg1: [2] },
      ],
    },
  }).build();
  const program = compilePolicy(policy).program;
  const allowed = (name: string, args: number[]) => {
    const r = evaluate(program, data(name, args)).ret;
    expect(modelVerdict(policy, data(name, args)).ret).toBe(r);
    return r === SECCOMP_RET_ALLOW;
  };

  it('allow only the listed values, flags within the mask, and matching pairs', () => {
    expect(allowed('ioctl', [1, 0x5401])).toBe(true);
    expect(allowed('ioctl', [1, 21523])).toBe(true);
    expect(allowed('ioctl', [1, 0x5402])).toBe(false);
    expect(allowed('openat', [0, 0, 0x80000])).toBe(true);
    expect(allowed('openat', [0, 0, 0x80800])).toBe(true);
    expect(allowed('openat', [0, 0, 0x1])).toBe(false); // O_WRONLY was never allowed
    expect(allowed('openat', [0, 0, 0x80040])).toBe(false); // O_CREAT
    expect(allowed('socket', [1, 1])).toBe(true);
    expect(allowed('socket', [1, 0x80001])).toBe(true);
    expect(allowed('socket', [2, 2])).toBe(true);
    expect(allowed('socket', [2, 1])).toBe(false); // AF_INET with a unix type
    expect(allowed('socket', [10, 1])).toBe(false);
  });

  it('argRule names what is wrong', () => {
    expect(argRule([], 'allowWhen.x')).toEqual({ problems: ['allowWhen.x: needs at least one alternative'] });
    const r = argRule([{ arg1: ['TCGETS'] }, { arg9: [1] } as never, { arg0: { onlyFlags: -1.5 } }], 'w');
    expect('problems' in r && r.problems).toEqual([
      'w[0].arg1: "TCGETS" is not a 32-bit value (a number, "0x..." or decimal)',
      'w[1]: unknown key "arg9" (arguments are arg0..arg5)',
      'w[2].arg0.onlyFlags: -1.5 is not a 32-bit value',
    ]);
  });
});

describe('synthesis', () => {
  it('turns facts into allow, allowWhen and fitting presets, on top of the base', () => {
    const f = new LearnedFacts('x86_64');
    f.add(nr('getcwd'), []);
    f.add(nr('ioctl'), [0x5401]);
    f.add(nr('ioctl'), [0x5413]);
    f.add(nr('openat'), [0x80000]);
    f.add(nr('openat'), [0x800]);
    f.add(nr('socket'), [1, 0x80001]);
    f.add(nr('socket'), [2, 2]);
    f.add(nr('socket'), [1, 1]);
    f.add(nr('getppid'), []);
    f.add(999, []);
    const { doc, problems } = synthesize(f, { errno: { uname: 'EPERM' }, files: [{ path: '/etc/passwd' }] });
    expect(problems).toEqual([expect.stringMatching(/syscall number 999 has no name/)]);
    expect(doc.allow).toContain('getcwd');
    for (const n of BASE_SET.filter((n) => !['exit', 'exit_group', 'futex', 'getpid', 'gettid'].includes(n)))
      expect(doc.allow).toContain(n);
    // every get-pids syscall was allowed (getpid, gettid in the base set, getppid seen): the preset
    expect(doc.presets).toEqual(expect.arrayContaining(['exit', 'futex', 'get-pids']));
    expect(doc.allow).not.toContain('getppid');
    expect(doc.allowWhen).toEqual({
      ioctl: [{ arg1: ['0x5401', '0x5413'] }],
      openat: [{ arg2: { onlyFlags: '0x80800' } }],
      socket: [
        { arg0: [1], arg1: [1, 0x80001] },
        { arg0: [2], arg1: [2] },
      ],
    });
    expect(doc.errno).toEqual({ uname: 'EPERM' });
    expect(doc.files).toEqual([{ path: '/etc/passwd' }]);
    // and it is a valid policy file
    expect(() => loadPolicyFile(doc).build()).not.toThrow();
  });

  it('merging widens an argument, drops an equal alternative, appends a different one', () => {
    const merged = mergeAlternatives(
      [{ arg1: ['0x5401'] }, { arg0: [1], arg1: [1] }],
      [{ arg1: ['0x5413'] }, { arg0: [1], arg1: [1] }, { arg0: [2], arg1: [2] }, { arg1: { onlyFlags: 1 } }],
    );
    expect(merged).toEqual([
      { arg1: ['0x5401', '0x5413'] },
      { arg0: [1], arg1: [1] },
      { arg0: [2], arg1: [2] },
      { arg1: { onlyFlags: 1 } },
    ]);
    expect(mergeAlternatives([{ arg2: { onlyFlags: '0x800' } }], [{ arg2: { onlyFlags: '0x80000' } }])).toEqual([
      { arg2: { onlyFlags: '0x80800' } },
    ]);
  });

  it('facts from several runs merge', () => {
    const a = new LearnedFacts('x86_64');
    a.addFromRegisters(nr('ioctl'), [1n, 0x5401n, 7n, 0n, 0n, 0n]);
    const b = new LearnedFacts('x86_64');
    b.addFromRegisters(nr('ioctl'), [2n, 0xffffffff00005401n, 0n, 0n, 0n, 0n]); // only the low 32 bits count
    b.addFromRegisters(nr('getcwd'), [5n, 6n, 0n, 0n, 0n, 0n]);
    a.merge(b);
    expect(a.syscalls).toEqual([nr('ioctl'), nr('getcwd')].sort((x, y) => x - y));
    expect(a.valuesOf(nr('ioctl'))).toEqual([[0x5401]]);
    expect(a.valuesOf(nr('getcwd'))).toEqual([[]]);
    expect(a.size).toBe(2);
  });
});

describe('formatPolicyFile', () => {
  it('is the same JSON, short values on one line, long lists wrapped under 100 columns', () => {
    const doc = {
      allow: Array.from({ length: 40 }, (_, i) => `syscall_${i}`),
      allowWhen: { ioctl: [{ arg1: ['0x5401'] }] },
      files: [{ path: '/odd, "name": [x]', writable: true }],
      tmpfs: [],
    };
    const text = formatPolicyFile(doc);
    expect(JSON.parse(text)).toEqual(doc);
    for (const line of text.split('\n')) expect(line.length).toBeLessThanOrEqual(100);
    expect(text).toContain('"allowWhen": {"ioctl": [{"arg1": ["0x5401"]}]}');
    expect(text.split('\n').length).toBeGreaterThan(5);
  });
});
