// The sbx CLI as a whole process: stdio passes through, exit codes are documented, flags are
// checked, nothing is left behind.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { processesWith, repoRoot } from './helpers.js';

const sbxBin = join(repoRoot, 'packages', 'executor', 'bin', 'sbx.js');

function sbx(args: string[], input?: string) {
  const r = spawnSync(process.execPath, [sbxBin, ...args], { encoding: 'utf8', input, timeout: 30_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('sbx run', () => {
  it('runs a program with stdio passed through and its exit code', () => {
    expect(sbx(['run', '--', '/bin/echo', 'hello', 'world'])).toMatchObject({ code: 0, stdout: 'hello world\n' });
    expect(sbx(['run', '--', '/bin/sh', '-c', 'exit 7']).code).toBe(7);
    expect(sbx(['run', '--', '/bin/cat'], 'piped in\n')).toMatchObject({ code: 0, stdout: 'piped in\n' });
  });

  it('finds a bare command name in PATH', () => {
    expect(sbx(['run', '--', 'echo', 'from-path'])).toMatchObject({ code: 0, stdout: 'from-path\n' });
  });

  it('shows a read-only system, no network, no host files', () => {
    const r = sbx([
      'run',
      '--',
      '/bin/sh',
      '-c',
      'touch /usr/x 2>/dev/null || echo ro; ls /root 2>/dev/null || echo noroot; cat /etc/shadow 2>/dev/null || echo noshadow; id -u',
    ]);
    expect(r.stdout.split('\n')).toEqual(['ro', 'noroot', 'noshadow', '1000', '']);
  });

  it('a violation exits 159 and names the syscall', () => {
    const r = sbx(['run', '--', '/usr/bin/unshare', '--user', '/bin/true']);
    expect(r.code).toBe(159);
    expect(r.stderr).toMatch(/VIOLATION.*unshare/);
  });

  it('a syscall outside the default policy is a violation; --allow adds it', () => {
    // modify_ldt (154 on x86_64) belongs to no family of the command-line default; perl's
    // syscall() makes it by number.
    const call = 'my $r = syscall(154, 0, 0, 0); print "ran\\n"';
    const denied = sbx(['run', '--', 'perl', '-e', call]);
    expect(denied.code).toBe(159);
    expect(denied.stderr).toMatch(/VIOLATION.*\[x86_64\] modify_ldt \(154\)/);
    expect(sbx(['run', '--allow', 'modify_ldt', '--', 'perl', '-e', call])).toMatchObject({ code: 0, stdout: 'ran\n' });
  });

  it('--errno makes a syscall fail with that errno', () => {
    const r = sbx(['run', '--errno', 'uname=EPERM', '--', '/bin/uname']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/Operation not permitted/);
  });

  it('--walltime ends a long run with 124 and leaves nothing behind', () => {
    const marker = `300.${process.pid}${Date.now() % 100000}`;
    const t0 = performance.now();
    const r = sbx(['run', '--walltime', '0.5', '--', '/bin/sh', '-c', `sleep ${marker} & sleep ${marker}`]);
    expect(r.code).toBe(124);
    expect(r.stderr).toMatch(/TIMEOUT/);
    expect(performance.now() - t0).toBeLessThan(10_000);
    expect(processesWith(marker)).toEqual([]);
  });

  it('--result-json writes the Result', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sbx-cli-'));
    const file = join(dir, 'r.json');
    expect(sbx(['run', '--result-json', file, '--', '/bin/sh', '-c', 'exit 3']).code).toBe(3);
    const json = JSON.parse(readFileSync(file, 'utf8'));
    expect(json).toMatchObject({ status: 'OK', exitCode: 3, violation: null });
    expect(typeof json.walltimeMs).toBe('number');
    rmSync(dir, { recursive: true });
  });

  it('--mount, --tmpfs, --env and --cwd', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sbx-cli-'));
    chmodSync(dir, 0o777);
    writeFileSync(join(dir, 'in.txt'), 'input data\n');
    const r = sbx([
      'run',
      '--mount',
      `${dir}:/data:rw`,
      '--tmpfs',
      '/scratch:1M',
      '--env',
      'GREETING=hi',
      '--cwd',
      '/data',
      '--',
      '/bin/sh',
      '-c',
      'cat in.txt; echo "$GREETING" > out.txt; echo x > /scratch/y && cat /scratch/y; pwd',
    ]);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('input data\nx\n/data\n');
    expect(readFileSync(join(dir, 'out.txt'), 'utf8')).toBe('hi\n');
    rmSync(dir, { recursive: true });
  });

  it('--rlimit-fsize stops a large write', () => {
    const r = sbx([
      'run',
      '--rlimit-fsize',
      '4K',
      '--',
      '/bin/sh',
      '-c',
      'head -c 100000 /dev/zero > /tmp/big; echo status $?',
    ]);
    expect(r.stdout).toBe('status 153\n'); // 128 + SIGXFSZ: the writer was killed by the limit
  });
});

describe('sbx run bad input', () => {
  const cases: Array<[string[], RegExp]> = [
    [['run'], /no command given/],
    [['run', '--walltime', 'soon', '--', '/bin/true'], /--walltime expects a non-negative number/],
    [['run', '--rlimit-as', '12Q', '--', '/bin/true'], /--rlimit-as expects a size/],
    [['run', '--mount', 'relative:/x', '--', '/bin/true'], /--mount paths must be absolute/],
    [['run', '--errno', 'uname', '--', '/bin/true'], /--errno expects SYSCALL=ERRNO/],
    [['run', '--net', 'sideways', '--', '/bin/true'], /--net expects none or host/],
    [['run', '--bogus', '--', '/bin/true'], /Unknown option '--bogus'/],
    [['frobnicate'], /unknown command "frobnicate"/],
  ];
  for (const [args, message] of cases) {
    it(`sbx ${args.join(' ')} -> exit 2`, () => {
      const r = sbx(args);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(message);
    });
  }

  it('an unknown syscall name in --allow is named, with suggestions', () => {
    const r = sbx(['run', '--allow', 'opne', '--', '/bin/true']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/opne/);
  });

  it('a missing program exits 126 with a clear message', () => {
    const r = sbx(['run', '--', '/no/such/program']);
    expect(r.code).toBe(126);
    expect(r.stderr).toMatch(/does not exist/);
  });
});

describe('sbx doctor', () => {
  it('reports every capability and passes on this host', () => {
    const r = sbx(['doctor']);
    expect(r.code).toBe(0);
    for (const name of ['user namespaces', 'seccomp user notification', 'pidfd', 'Landlock'])
      expect(r.stdout).toContain(name);
    const json = JSON.parse(sbx(['doctor', '--json']).stdout);
    expect(json.find((c: { name: string }) => c.name === 'Landlock').ok).toBe(true);
  });
});

describe('sbx policy and run --policy', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sbx-cli-policy-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const write = (name: string, content: unknown) => {
    const p = join(dir, name);
    writeFileSync(p, JSON.stringify(content));
    return p;
  };
  const echo = write('echo.json', { presets: ['dynamic-startup'], allow: ['write', 'exit_group'] });
  const bad = write('bad.json', {
    alow: ['read'],
    allow: ['wirte', 7],
    errno: { uname: 'EPRM' },
    files: [{ path: 'etc/passwd' }],
    network: { mode: 'rules', allow: ['10.0.0.0/33'] },
  });

  it('check: a good file exits 0 and counts its rules and mounts', () => {
    const r = sbx(['policy', 'check', echo]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^ok: \d+ syscall rules, 0 mounts\n$/);
  });

  it('check: a bad file exits 2 and lists every problem', () => {
    const schema = sbx(['policy', 'check', bad]);
    expect(schema.code).toBe(2);
    expect(schema.stderr).toContain(`${bad}: unknown key "alow" at /`);
    expect(schema.stderr).toContain(`${bad}: /allow/1: must be string`);
    const built = write('bad2.json', {
      allow: ['wirte'],
      errno: { uname: 'EPRM' },
      files: [{ path: 'etc/passwd' }],
      network: { mode: 'rules', allow: ['10.0.0.0/33'] },
    });
    const r = sbx(['policy', 'check', built]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/4 problems/);
    expect(r.stderr).toContain('unknown syscall "wirte" on x86_64 (did you mean write');
    expect(r.stderr).toContain('unknown errno name "EPRM"');
    expect(r.stderr).toContain('"etc/passwd" must be absolute');
    expect(r.stderr).toContain('allowIPv4("10.0.0.0/33")');
    expect(sbx(['policy', 'check', join(dir, 'missing.json')]).code).toBe(2);
    expect(sbx(['policy', 'frobnicate', echo]).code).toBe(2);
  });

  it('explain names every allowed syscall; --json gives the same as data', () => {
    const small = write('small.json', { allow: ['write', 'exit_group'], errno: { uname: 'EPERM' } });
    const r = sbx(['policy', 'explain', small]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/\(write\)/);
    expect(r.stdout).toMatch(/\(exit_group\)/);
    expect(r.stdout).toContain('allowed (2): exit_group write');
    expect(r.stdout).toContain('errno (1): uname=EPERM');
    const j = sbx(['policy', 'explain', small, '--json']);
    expect(j.code).toBe(0);
    const data = JSON.parse(j.stdout);
    expect(data).toMatchObject({
      allowed: ['exit_group', 'write'],
      errno: { uname: 'EPERM' },
      default: 'kill',
      mounts: [],
      network: { mode: 'none' },
    });
    expect(data.instructions.length).toBeGreaterThan(5);
    expect(data.instructions.join('\n')).toMatch(/\(write\)/);
  });

  it('run --policy FILE: the file is the policy; a syscall outside it is a violation', () => {
    expect(sbx(['run', '--policy', echo, '--', '/bin/echo', 'hi'])).toMatchObject({ code: 0, stdout: 'hi\n' });
    const denied = sbx(['run', '--policy', echo, '--', '/bin/ls', '/']);
    expect(denied.code).toBe(159);
    expect(denied.stderr).toMatch(/VIOLATION/);
    // --errno still comes first
    const uname = write('uname.json', { presets: ['dynamic-startup'], allow: ['write', 'exit_group', 'uname'] });
    const u = sbx(['run', '--policy', uname, '--errno', 'uname=EPERM', '--', '/bin/uname']);
    expect(u.code).not.toBe(0);
    expect(u.code).not.toBe(159);
    expect(u.stderr).toMatch(/Operation not permitted/);
    const b = sbx(['run', '--policy', bad, '--', '/bin/echo', 'hi']);
    expect(b.code).toBe(2);
    expect(b.stderr).toContain('unknown key "alow" at /');
  });
});
