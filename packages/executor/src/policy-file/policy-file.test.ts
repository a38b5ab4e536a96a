import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { AUDIT_ARCH_X86_64 } from '../policy/bpf.js';
import { compilePolicy } from '../policy/compiler.js';
import { PolicyError } from '../policy/errors.js';
import { evaluate } from '../policy/evaluator.js';
import { PolicyBuilder } from '../policy/policy-builder.js';
import { syscallNumber } from '../policy/syscalls.js';
import { POLICY_FILE_SCHEMA, loadPolicyFile } from './policy-file.js';
import * as index from '../index.js';

const dir = mkdtempSync(join(tmpdir(), 'sbx-policy-file-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
function file(content: unknown): string {
  const p = join(dir, `p${n++}.json`);
  writeFileSync(p, typeof content === 'string' ? content : JSON.stringify(content));
  return p;
}
function problems(source: string | object): string[] {
  try {
    loadPolicyFile(source, { arch: 'x86_64' });
  } catch (e) {
    expect(e).toBeInstanceOf(PolicyError);
    return (e as PolicyError).problems;
  }
  throw new Error('expected a PolicyError');
}
const nr = (name: string) => syscallNumber('x86_64', name)!;

describe('loadPolicyFile', () => {
  it('is exported from the package, and policy.schema.json is the schema it validates with', () => {
    expect(index.loadPolicyFile).toBe(loadPolicyFile);
    const committed = JSON.parse(readFileSync(join(import.meta.dirname, '..', '..', 'policy.schema.json'), 'utf8'));
    expect(committed).toEqual(JSON.parse(JSON.stringify(POLICY_FILE_SCHEMA)));
  });

  it('turns a valid file into a builder whose policy compiles and decides as written', () => {
    const p = file({
      $schema: './policy.schema.json',
      presets: ['static-startup', 'exit'],
      allow: ['write'],
      errno: { uname: 'EPERM', getpid: 38 },
      default: { errno: 'ENOSYS' },
      files: [{ path: '/etc/passwd' }, { path: '/etc/group', inside: '/g', writable: false }],
      directories: [{ path: '/usr', inside: '/usr' }],
      tmpfs: [
        { path: '/tmp', size: '1M' },
        { path: '/scratch', size: 4096 },
      ],
      network: {
        mode: 'rules',
        allow: ['10.0.0.0/8:443', '[2001:db8::/32]:80'],
        deny: ['10.1.0.0/16'],
        dns: ['1.1.1.1'],
        unix: ['/run/x.sock'],
      },
    });
    const b = loadPolicyFile(p, { arch: 'x86_64' });
    expect(b).toBeInstanceOf(PolicyBuilder);
    const policy = b.allowSyscall('getppid').build();
    const c = compilePolicy(policy);
    const run = (name: string) => evaluate(c.insns, { arch: AUDIT_ARCH_X86_64, nr: nr(name), args: [] });
    expect(run('write').action).toBe('ALLOW');
    expect(run('exit_group').action).toBe('ALLOW');
    expect(run('getppid').action).toBe('ALLOW');
    expect(run('uname')).toMatchObject({ action: 'ERRNO', data: 1 });
    expect(run('getpid')).toMatchObject({ action: 'ERRNO', data: 38 });
    expect(run('getuid')).toMatchObject({ action: 'ERRNO', data: 38 });
    expect(policy.mounts.map((m) => m.inside)).toEqual(['/etc/passwd', '/g', '/scratch', '/tmp', '/usr']);
    expect(policy.mounts.find((m) => m.inside === '/tmp')).toMatchObject({ kind: 'tmpfs', sizeBytes: 1 << 20 });
    expect(policy.network.mode).toBe('rules');
    expect(policy.network.rules).toHaveLength(4);
    expect(policy.network.unixSockets).toEqual(['/run/x.sock']);
  });

  it('takes an object too, and "kill" is the default action', () => {
    const policy = loadPolicyFile({ allow: ['read'] }, { arch: 'x86_64' }).build();
    expect(policy.defaultAction).toBe('kill');
    expect(policy.rules.map((r) => r.name)).toEqual(['read']);
    expect(loadPolicyFile({ network: { mode: 'host' } }).build().network.mode).toBe('unrestricted');
  });

  it('an unknown key is named with where it is', () => {
    const p = file({ alow: ['read'], files: [{ path: '/etc/passwd', rw: true }] });
    expect(problems(p)).toEqual([`${p}: unknown key "alow" at /`, `${p}: unknown key "rw" at /files/0`]);
  });

  it('a wrong type names the JSON pointer', () => {
    const p = file({
      allow: ['read', 'write', 'exit', 3],
      tmpfs: [{ path: '/tmp', size: '1Q' }],
      presets: ['reed'],
      default: 'deny',
    });
    expect(problems(p)).toEqual(
      expect.arrayContaining([
        `${p}: /allow/3: must be string`,
        `${p}: /tmpfs/0/size: must match pattern "^[0-9]+[kKmMgGtT]?$"`,
        expect.stringMatching(/^.*: \/presets\/0: must be one of "dynamic-startup", /),
        `${p}: /default: must be one of "kill", "allow", "log"`,
      ]),
    );
    expect(problems({ network: {} })).toEqual(["/network: must have required property 'mode'"]);
    expect(problems([])).toEqual(['/: must be object']);
  });

  it('an unknown syscall comes from the builder, with suggestions', () => {
    const p = file({ allow: ['wirte'] });
    expect(problems(p)).toEqual([
      `${p}: allowSyscall: unknown syscall "wirte" on x86_64 (did you mean write, listen, pipe?)`,
    ]);
  });

  it('a bad CIDR or port', () => {
    const p = file({ network: { mode: 'rules', allow: ['10.0.0.0/33', '1.2.3.4:99999'] } });
    expect(problems(p)).toEqual([
      `${p}: allowIPv4("10.0.0.0/33"): the prefix length must be 0..32`,
      `${p}: network: the port of "1.2.3.4:99999" must be 0..65535`,
    ]);
    expect(problems({ network: { mode: 'none', allow: ['10.0.0.0/8'] } })).toEqual([
      'network: mode "none" takes no allow/deny/dns/unix lists (use mode "rules")',
    ]);
  });

  it('a bad errno name', () => {
    const p = file({ errno: { uname: 'EPRM' } });
    expect(problems(p)).toEqual([
      `${p}: blockSyscallWithErrno: unknown errno name "EPRM" (did you mean EPERM, EDOM, EIDRM?)`,
    ]);
    expect(problems({ errno: { uname: 'eperm' } })).toEqual(['/errno/uname: must match pattern "^E[A-Z0-9]+$"']);
  });

  it('a relative path', () => {
    const p = file({ files: [{ path: 'etc/passwd' }], tmpfs: [{ path: 'tmp' }] });
    expect(problems(p)).toEqual([
      `${p}: addFile: the path "etc/passwd" must be absolute`,
      `${p}: addTmpfs: the inside path "tmp" must be absolute`,
    ]);
  });

  it('a missing file and bad JSON', () => {
    expect(problems(join(dir, 'nope.json'))).toEqual([`${join(dir, 'nope.json')}: cannot read the file (ENOENT)`]);
    const p = file('{ "allow": [');
    expect(problems(p)[0]).toMatch(new RegExp(`^${p}: not valid JSON`));
  });
});
