// Property tests of the policy-file loader (policy-file.ts), with a small seeded generator (no
// dependency; a failure names its seed, and the same seed reproduces it).
//
// Properties:
//   1. a valid file, written from random choices of every key, loads, builds, compiles, and the
//      compiled program allows exactly the syscalls it lists (and errno rules answer their errno);
//   2. any mutation of a valid file (keys renamed or added, values replaced by other JSON types,
//      strings garbled, arrays truncated or doubled, junk documents) either loads or throws a
//      PolicyError whose problems are non-empty strings: never another exception, never a crash.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { PolicyError } from '../policy/errors.js';
import { type CompiledPolicy, compilePolicy } from '../policy/compiler.js';
import { evaluate } from '../policy/evaluator.js';
import { syscallNumber } from '../policy/syscalls.js';
import { loadPolicyFile } from './policy-file.js';
import { rng, type Rng } from '../../../../test/prng.js';

const SYSCALLS = [
  'read',
  'write',
  'openat',
  'close',
  'fstat',
  'lseek',
  'getpid',
  'uname',
  'sysinfo',
  'getcwd',
  'nanosleep',
  'getrandom',
  'dup',
  'pipe2',
  'getuid',
];
const ERRNOS = ['EPERM', 'EACCES', 'ENOSYS', 'EINVAL', 5, 13];
const PRESETS = ['dynamic-startup', 'static-startup', 'system-malloc', 'exit', 'time', 'sleep', 'futex', 'get-ids'];
const AUDIT_ARCH_X86_64 = 0xc000003e;

function validFile(r: Rng) {
  const names = [...SYSCALLS].sort(() => r.next() - 0.5);
  const errnoNames = names.splice(0, r.int(3));
  const allow = names.splice(0, 1 + r.int(6));
  const doc: Record<string, unknown> = { allow, presets: PRESETS.filter(() => r.chance(0.3)) };
  if (errnoNames.length) doc.errno = Object.fromEntries(errnoNames.map((n) => [n, r.pick(ERRNOS)]));
  if (r.chance(0.5)) doc.directories = [{ path: '/usr' }];
  if (r.chance(0.5)) doc.files = [{ path: '/etc/passwd' }, { path: '/dev/null', writable: true }];
  if (r.chance(0.5)) doc.tmpfs = [{ path: '/tmp', size: r.pick(['1M', '64K', 4096]) }];
  if (r.chance(0.3)) doc.network = { mode: 'rules', allow: ['10.0.0.0/8:443'], deny: ['10.1.0.0/16'] };
  if (r.chance(0.3)) doc.presets = [...(doc.presets as string[]), 'network-client'];
  return { doc, allow, errno: (doc.errno ?? {}) as Record<string, string | number> };
}

const JSON_VALUES: unknown[] = [
  null,
  true,
  0,
  -1,
  1.5,
  2 ** 40,
  '',
  'x',
  'read',
  '/rel/path',
  'relative',
  '10.0.0.1/8',
  [],
  [1],
  {},
  { a: 1 },
];

function mutate(r: Rng, value: unknown, depth = 0): unknown {
  if (depth > 4 || r.chance(0.15)) return r.pick(JSON_VALUES);
  if (Array.isArray(value)) {
    let out = value.map((v) => (r.chance(0.3) ? mutate(r, v, depth + 1) : v));
    if (r.chance(0.2)) out = out.slice(0, r.int(out.length + 1));
    if (r.chance(0.2)) out = [...out, ...out];
    if (r.chance(0.2)) out.push(r.pick(JSON_VALUES));
    return out;
  }
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      if (r.chance(0.1)) continue; // dropped
      const key = r.chance(0.1) ? `${k}x` : k; // renamed: an unknown key
      out[key] = r.chance(0.4) ? mutate(r, v, depth + 1) : v;
    }
    if (r.chance(0.1)) out[r.pick(['bogus', 'allow', 'errno', 'network', 'default'])] = r.pick(JSON_VALUES);
    return out;
  }
  if (typeof value === 'string' && r.chance(0.5)) {
    const chars = [...value];
    const i = r.int(chars.length + 1);
    chars.splice(i, r.int(2), r.pick(['/', '.', ':', ' ', '\0', 'é', '9']));
    return chars.join('');
  }
  return r.pick(JSON_VALUES);
}

const dir = mkdtempSync(join(tmpdir(), 'sbx-policy-file-'));
let files = 0;
function writeJson(doc: unknown): string {
  const path = join(dir, `doc-${files++}.json`);
  writeFileSync(path, JSON.stringify(doc) ?? 'undefined');
  return path;
}
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('policy files, property tests', () => {
  it('random valid files load, compile, and allow exactly what they list', () => {
    for (let seed = 1; seed <= 150; seed++) {
      const r = rng(seed);
      const { doc, allow, errno } = validFile(r);
      let program: CompiledPolicy['program'];
      try {
        program = compilePolicy(loadPolicyFile(doc).build(), { monitor: false, cache: false }).program;
      } catch (err) {
        throw new Error(`seed ${seed}: ${JSON.stringify(doc)}: ${(err as Error).message}`);
      }
      for (const name of allow) {
        const v = evaluate(program, { nr: syscallNumber('x86_64', name)!, arch: AUDIT_ARCH_X86_64 });
        expect(v.action, `seed ${seed}: ${name}`).toBe('ALLOW');
      }
      for (const name of Object.keys(errno)) {
        const v = evaluate(program, { nr: syscallNumber('x86_64', name)!, arch: AUDIT_ARCH_X86_64 });
        expect(v.action, `seed ${seed}: ${name}`).toBe('ERRNO');
      }
    }
  });

  it('mutated files load or fail with a PolicyError listing their problems, nothing else', () => {
    let failed = 0;
    for (let seed = 1; seed <= 1500; seed++) {
      const r = rng(seed);
      const doc = r.chance(0.05) ? r.pick(JSON_VALUES) : mutate(r, validFile(r).doc);
      // A document that is not an object arrives the way a user's would: in a file.
      const source = doc !== null && typeof doc === 'object' && !Array.isArray(doc) ? doc : writeJson(doc);
      try {
        compilePolicy(loadPolicyFile(source).build(), { monitor: true, cache: false });
      } catch (err) {
        if (!(err instanceof PolicyError))
          throw new Error(`seed ${seed}: ${JSON.stringify(doc)}: not a PolicyError: ${String(err)}`);
        expect(err.problems.length, `seed ${seed}`).toBeGreaterThan(0);
        for (const p of err.problems) expect(typeof p === 'string' && p.length > 0, `seed ${seed}`).toBe(true);
        failed++;
      }
    }
    expect(failed).toBeGreaterThan(300); // the mutations really produce bad files
  });
});
