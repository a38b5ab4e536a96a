// sbx run's default, and the same default in the SDK: allowCommandLine() runs what ordinary
// programs do while the always-on denials still hold; addStandardView() names the sandbox's
// user without leaving the sandbox; CMD is found as the sandbox sees it; --rlimit-nproc.
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Executor, PolicyBuilder, standardEnvironment, type PolicyFile } from '@sbx/executor';
import { defaultPolicy } from '../packages/executor/src/cli/default-policy.js';
// The same module instance as defaultPolicy's (the generated identity files are per instance).
import { PolicyBuilder as SourcePolicyBuilder } from '../packages/executor/src/policy/policy-builder.js';
import { ALWAYS_DENIED_PROBES, repoRoot, runCaptured, testcase } from './helpers.js';

const sbxBin = join(repoRoot, 'packages', 'executor', 'bin', 'sbx.js');
function sbx(args: string[], input?: string) {
  const r = spawnSync(process.execPath, [sbxBin, ...args], { encoding: 'utf8', input: input ?? '', timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const dir = mkdtempSync(join(tmpdir(), 'sbx-default-'));
chmodSync(dir, 0o755); // readable by the sandboxee (host nobody when the tests run as root)
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const noFlags = {
  allow: [],
  errno: [],
  mounts: [],
  tmpfs: [],
  network: { mode: 'none' as const, allow: [], deny: [], dns: [], unix: [] },
};
const sdkDefault = (extra?: (b: PolicyBuilder) => void) => {
  const b = new PolicyBuilder();
  extra?.(b);
  return b.allowCommandLine().addStandardView().build();
};
/** Runs argv (a bare name or a path as the sandbox sees it) the way an SDK user gets sbx run's default. */
const sdkRun = (argv: string[], policy = sdkDefault()) =>
  runCaptured(argv, {
    policy,
    executor: { env: standardEnvironment(), resolveInView: policy, limits: { walltime: 30 } },
  });

describe('the SDK gives exactly what sbx run runs with', () => {
  it("allowCommandLine() + addStandardView() is sbx run's default policy, rules and view", () => {
    expect(new SourcePolicyBuilder().allowCommandLine().addStandardView().build().toJSON()).toEqual(
      defaultPolicy(null, noFlags).toJSON(),
    );
  });

  it('a bare name found in the view, the sandbox user named in it, HOME writable', async () => {
    const c = await sdkRun(['sh', '-c', 'id; whoami; echo $HOME $USER; touch ~/x && ls -l ~/x | cut -d" " -f3']);
    expect(c.result.toString()).toMatch(/^OK, exit code 0/);
    expect(c.stdout).toBe('uid=1000(sandbox) gid=1000(sandbox) groups=1000(sandbox)\nsandbox\n/tmp sandbox\nsandbox\n');
  });

  it('name lookups never leave the sandbox: with every socket() refused, id, getent, python and perl still resolve the user', async () => {
    // (glibc still tries nscd's socket first; no /run is in the view for it to reach)
    const policy = sdkDefault((b) => b.blockSyscallWithErrno('socket', 'EACCES'));
    const c = await sdkRun(
      [
        'sh',
        '-c',
        'id -un; getent passwd 1000 | cut -d: -f1,6; getent group sandbox | cut -d: -f3; python3 -c "import pwd, grp; print(pwd.getpwnam(\'sandbox\').pw_uid, grp.getgrgid(1000).gr_name)"; perl -e \'print scalar getpwuid($<), "\\n"\'',
      ],
      policy,
    );
    expect(c.result.toString()).toMatch(/^OK, exit code 0/);
    expect(c.stdout).toBe('sandbox\nsandbox:/tmp\n1000\n1000 sandbox\nsandbox\n');
    // a files-only nsswitch.conf: no systemd, nscd or sss module to ask
    const ns = await sdkRun(['cat', '/etc/nsswitch.conf']);
    expect(ns.stdout).toMatch(/^passwd: files$/m);
    expect(ns.stdout).not.toMatch(/systemd|sss|ldap|nis/);
  });

  it('the view holds no host secrets or sockets: no shadow, no /run, no /home, no /root', async () => {
    const c = await sdkRun([
      'sh',
      '-c',
      'for p in /etc/shadow /etc/gshadow /etc/ssh /run /var/run /home /root /etc/ssl/private; do test -e $p && echo "present $p"; done; ls /etc | wc -l; echo checked',
    ]);
    expect(c.stdout).toMatch(/^\d+\nchecked\n$/);
    expect(Number(c.stdout.split('\n')[0])).toBeLessThan(30);
  });
});

describe('allowCommandLine(): the always-on denials still hold', () => {
  const probePolicy = () => {
    const b = new PolicyBuilder().allowCommandLine().addStandardView();
    b.addLibrariesForBinary(testcase('violations'));
    return b.build();
  };
  const probe = (name: string) =>
    runCaptured([testcase('violations'), name], { policy: probePolicy(), executor: { limits: { walltime: 10 } } });
  const cases: Array<[string, string]> = [...ALWAYS_DENIED_PROBES, ['tiocsti', 'ioctl'], ['tioclinux', 'ioctl']];
  it.each(cases)('%s -> VIOLATION %s', async (test, syscall) => {
    const { result, stdout } = await probe(test);
    expect(result.status, result.toString()).toBe('VIOLATION');
    expect(result.violation?.syscall).toBe(syscall);
    expect(stdout).toBe('');
  });
});

describe('allowCommandLine(): argument rules and privileged calls', () => {
  // perl's syscall() makes any call by number (x86_64 numbers).
  const perl = (code: string) => sbx(['run', '--', 'perl', '-e', code]);
  const ret = (nr: number, ...args: Array<number | string>) =>
    `my $r = syscall(${[nr, ...args].join(', ')}); print "$r ", ($r < 0 ? $! + 0 : 0), "\\n";`;

  it.skipIf(process.arch !== 'x64')(
    'administration and ptrace-class calls fail with EPERM, as for any unprivileged process',
    () => {
      // kcmp (312), process_vm_readv (310), chroot (161), sethostname (170), syslog (103), setns (308)
      const r = perl(
        [
          'my $p = "/tmp";',
          ret(312, 1, 1, 0, 0, 0),
          ret(310, 1, 0, 0, 0, 0, 0),
          ret(161, '$p'),
          ret(170, '$p', 1),
          ret(103, 10, 0, 0),
          ret(308, 0, 0),
        ].join(''),
      );
      expect(r).toMatchObject({ code: 0, stdout: '-1 1\n-1 1\n-1 1\n-1 1\n-1 1\n-1 1\n' });
    },
  );

  it.skipIf(process.arch !== 'x64')(
    'a syscall of no family (modify_ldt) is a violation that names it; --allow adds it',
    () => {
      const denied = perl(ret(154, 0, 0, 0));
      expect(denied.code).toBe(159);
      expect(denied.stderr).toMatch(/VIOLATION.*\[x86_64\] modify_ldt \(154\)/);
      expect(sbx(['run', '--allow', 'modify_ldt', '--', 'perl', '-e', ret(154, 0, 0, 0)]).code).toBe(0);
    },
  );

  it('socket(): unix, IPv4, IPv6 and netlink route; other families EAFNOSUPPORT', () => {
    const py = [
      'import socket, errno',
      'def t(*a):',
      '    try:',
      '        socket.socket(*a).close(); return "ok"',
      '    except OSError as e:',
      '        return errno.errorcode[e.errno]',
      'print(t(socket.AF_UNIX, socket.SOCK_STREAM), t(socket.AF_INET, socket.SOCK_DGRAM), t(socket.AF_INET6, socket.SOCK_STREAM), t(socket.AF_NETLINK, socket.SOCK_RAW, 0))',
      'print(t(socket.AF_NETLINK, socket.SOCK_RAW, 9), t(socket.AF_PACKET, socket.SOCK_RAW, 0), t(40, socket.SOCK_STREAM, 0))',
    ].join('\n');
    expect(sbx(['run', '--', 'python3', '-c', py])).toMatchObject({
      code: 0,
      stdout: 'ok ok ok ok\nEAFNOSUPPORT EAFNOSUPPORT EAFNOSUPPORT\n',
    });
  });

  it("prlimit64 sets only the caller's own limits; personality only the Linux personalities", () => {
    const py = [
      'import resource, ctypes, os',
      'resource.prlimit(0, resource.RLIMIT_NOFILE, (100, 100)); print(resource.getrlimit(resource.RLIMIT_NOFILE))',
      'libc = ctypes.CDLL(None, use_errno=True)',
      'print(libc.personality(0xffffffff) & 0xff, libc.personality(0x0040000), ctypes.get_errno())',
    ].join('\n');
    expect(sbx(['run', '--', 'python3', '-c', py])).toMatchObject({ code: 0, stdout: '(100, 100)\n0 -1 1\n' });
    // prlimit64 on another pid is an always-on denial (a violation): test/escape/prlimit.test.ts.
  });

  it("no network by default: sockets work on the sandbox's own loopback only", () => {
    const py =
      'import socket\ns = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen()\nc = socket.create_connection(s.getsockname()); a, _ = s.accept(); c.sendall(b"lo"); print(a.recv(2).decode())\ntry:\n    socket.create_connection(("1.1.1.1", 53), timeout=2); print("reached")\nexcept OSError as e: print("unreachable")';
    expect(sbx(['run', '--', 'python3', '-c', py])).toMatchObject({ code: 0, stdout: 'lo\nunreachable\n' });
  });
});

describe('CMD as seen inside the sandbox', () => {
  const app = join(dir, 'app');
  mkdirSync(join(app, 'bin'), { recursive: true, mode: 0o755 });
  chmodSync(app, 0o755);
  chmodSync(join(app, 'bin'), 0o755);
  copyFileSync('/bin/echo', join(app, 'bin', 'tool'));
  chmodSync(join(app, 'bin', 'tool'), 0o755);
  writeFileSync(join(app, 'bin', 'script'), '#!/bin/sh\necho "script $0 $*"\n', { mode: 0o755 });
  writeFileSync(join(app, 'bin', 'envpy'), '#!/usr/bin/env python3\nimport sys\nprint("py", sys.argv)\n', {
    mode: 0o755,
  });

  it('--mount SRC:/app -- /app/bin/tool runs the tool at its path inside', () => {
    expect(sbx(['run', '--mount', `${app}:/app`, '--', '/app/bin/tool', 'inside'])).toMatchObject({
      code: 0,
      stdout: 'inside\n',
    });
  });

  it("a bare name is looked up in the sandbox's PATH within its view", () => {
    expect(
      sbx(['run', '--mount', `${app}:/app`, '--env', 'PATH=/app/bin:/usr/bin:/bin', '--', 'tool', 'via-path']),
    ).toMatchObject({ code: 0, stdout: 'via-path\n' });
    // /usr/sbin is in the view, but not in the sandbox's PATH
    const r = sbx(['run', '--env', 'PATH=/nowhere', '--', 'ls']);
    expect(r.code).toBe(126);
    expect(r.stderr).toMatch(/"ls" was not found in the sandbox's PATH \(\/nowhere\) within its view/);
  });

  it('#! scripts run with their interpreter found in the view, #!/usr/bin/env too', () => {
    expect(sbx(['run', '--mount', `${app}:/app`, '--', '/app/bin/script', 'a', 'b'])).toMatchObject({
      code: 0,
      stdout: 'script /app/bin/script a b\n',
    });
    expect(sbx(['run', '--mount', `${app}:/app`, '--', '/app/bin/envpy', 'x'])).toMatchObject({
      code: 0,
      stdout: "py ['/app/bin/envpy', 'x']\n",
    });
  });

  it('a path in neither the view nor the host is a setup error that says where it looked', () => {
    const r = sbx(['run', '--', '/app/bin/tool']);
    expect(r.code).toBe(126);
    expect(r.stderr).toMatch(/\/app\/bin\/tool does not exist in the sandbox's view/);
  });

  it('the Executor keeps host paths by default; resolveInView finds the path inside', async () => {
    const policy = new PolicyBuilder().allowCommandLine().addStandardView().addDirectoryAt(app, '/app').build();
    expect(() => new Executor('/app/bin/tool')).toThrow(/does not exist/);
    const host = new Executor(join(app, 'bin', 'tool'));
    expect(host.path).toBe(join(app, 'bin', 'tool'));
    const inView = new Executor('/app/bin/script', ['/app/bin/script', 'z'], { resolveInView: policy });
    expect(inView.path).toBe('/usr/bin/dash');
    expect(inView.argv).toEqual(['/bin/sh', '/app/bin/script', 'z']);
    const c = await runCaptured(['/app/bin/script', 'z'], { policy, executor: { resolveInView: policy } });
    expect(c.stdout).toBe('script /app/bin/script z\n');
    expect(() => new Executor('tool', ['tool'], { resolveInView: policy })).toThrow(/not found in the sandbox's PATH/);
    expect(() => new Executor('tool', ['tool'], { resolveInView: {} as never })).toThrow(TypeError);
    // the sandbox's /proc and /dev are its own: nothing there is the executor's
    expect(() => new Executor('/proc/self/exe', ['x'], { resolveInView: policy })).toThrow(
      /does not exist in the sandbox's view/,
    );
  });
});

describe('--rlimit-nproc', () => {
  it('sbx run has a default process limit, and --rlimit-nproc sets it', () => {
    expect(sbx(['run', '--', 'bash', '-c', 'ulimit -u'])).toMatchObject({ code: 0, stdout: '1024\n' });
    expect(sbx(['run', '--rlimit-nproc', '50', '--', 'bash', '-c', 'ulimit -u'])).toMatchObject({
      code: 0,
      stdout: '50\n',
    });
  });

  it("a fork bomb stops at the limit (EAGAIN), counted in the sandbox's own user namespace", () => {
    const py = [
      'import os, time',
      'pids = []',
      'try:',
      '    for i in range(50):',
      '        p = os.fork()',
      '        if p == 0:',
      '            time.sleep(10); os._exit(0)',
      '        pids.append(p)',
      '    print("no limit")',
      'except BlockingIOError:',
      '    print("EAGAIN after", len(pids))',
      'for p in pids: os.kill(p, 9)',
    ].join('\n');
    const r = sbx(['run', '--rlimit-nproc', '8', '--', 'python3', '-c', py]);
    expect(r.code, r.stderr).toBe(0);
    const forked = Number(/^EAGAIN after (\d+)\n$/.exec(r.stdout)?.[1]);
    expect(forked).toBeGreaterThan(0);
    expect(forked).toBeLessThan(8);
    // the host uid's other processes do not count: the same limit holds however many the host runs
    expect(sbx(['run', '--rlimit-nproc', '8', '--', 'python3', '-c', py]).stdout).toBe(r.stdout);
  });

  it('bad values are usage errors', () => {
    for (const v of ['0', 'x', '-1']) expect(sbx(['run', `--rlimit-nproc=${v}`, '--', 'true']).code).toBe(2);
  });
});

describe('sbx learn with the standard view', () => {
  const out = (name: string) => join(dir, name);

  it('--verify replays the stdin the learning run read', () => {
    const r = sbx(
      ['learn', '-o', out('read.json'), '--verify', '--', 'sh', '-c', 'read x && echo "got $x"'],
      'a line\n',
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('got a line\ngot a line\n');
    expect(r.stderr).toMatch(/verify: OK/);
    const doc = JSON.parse(readFileSync(out('read.json'), 'utf8')) as PolicyFile;
    expect(doc.view).toBe('standard');
  });

  it('a verify run that exits non-zero fails the verify unless --verify-any-exit', () => {
    const failed = sbx(['learn', '-o', out('exit.json'), '--verify', '--', 'sh', '-c', 'exit 3']);
    expect(failed.code).toBe(1);
    expect(failed.stderr).toMatch(/verify: FAILED: the program exited 3/);
    expect(
      sbx(['learn', '-o', out('exit.json'), '--verify', '--verify-any-exit', '--', 'sh', '-c', 'exit 3']).code,
    ).toBe(0);
    expect(sbx(['learn', '--verify-any-exit', '--', 'true']).code).toBe(2);
  });

  it("--without-view writes syscall rules only; they run under a view of the caller's", () => {
    const r = sbx(['learn', '--without-view', '--', 'sh', '-c', 'echo hi']);
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout) as PolicyFile;
    for (const k of ['view', 'files', 'directories', 'tmpfs', 'librariesFor'] as const) expect(doc[k]).toBeUndefined();
    expect(doc.allow?.length).toBeGreaterThan(5);
    const withView = join(dir, 'with-view.json');
    writeFileSync(withView, JSON.stringify({ ...doc, view: 'standard' }), { mode: 0o644 });
    expect(sbx(['run', '--policy', withView, '--', 'sh', '-c', 'echo hi'])).toMatchObject({ code: 0, stdout: 'hi\n' });
  });
});
