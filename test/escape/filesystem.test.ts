// The mount tree as a wall: no mount call can change it (seccomp), the sandboxee has no
// capability that would let the kernel accept one anyway, no path leads above its root, kernel
// tunables in /proc/sys and /sys refuse writes, and symlinks cannot move a mount onto the host.
// policy.test.ts covers mount(2) itself; executor.test.ts covers plain ro binds and hidden files.
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  chmodSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { PolicyBuilder } from '@sbx/executor';
import { runCaptured, sh } from '../helpers.js';
import { escapePolicy, executorStaysUnharmed, expectViolation, lines, probe, probePath } from './harness.js';

executorStaysUnharmed();

const scratch = mkdtempSync(join(tmpdir(), 'sbx-escape-fs-'));
chmodSync(scratch, 0o755); // as root the sandboxee is host nobody: it must reach what we bind
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe('mounts cannot be changed from inside', () => {
  // Each member of the mount family, on the read-only /usr bind: a violation naming the call.
  const family: Array<[string, string]> = [
    ['remount-rw', 'mount'],
    ['umount', 'umount2'],
    ['mount_setattr', 'mount_setattr'],
    ['open_tree', 'open_tree'],
    ['fsopen', 'fsopen'],
    ['move_mount', 'move_mount'],
    ['pivot_root', 'pivot_root'],
  ];
  for (const [name, syscall] of family) {
    it(`${name} -> VIOLATION ${syscall}`, async () => {
      const c = await probe([name]);
      expectViolation(c, syscall, name);
      expect(lines(c)).toEqual([`${name}: calling`]);
    });
  }

  it('with mount softened to EPERM, the remount fails and /usr stays read-only', async () => {
    const c = await probe(['remount-rw'], { policy: escapePolicy((b) => b.blockSyscallWithErrno('mount', 'EPERM')) });
    expect(c.result.status, c.result.toString()).toBe('OK');
    expect(lines(c)).toEqual(['remount-rw: calling', 'remount-rw: errno EPERM', 'write /usr: errno EROFS']);
  });

  it('no capability behind the filter either: chroot (not filtered) is EPERM, setns into its own mount namespace is EPERM', async () => {
    const chroot = await probe(['chroot']);
    expect(lines(chroot)).toEqual(['chroot: errno EPERM']);
    const setns = await probe(['setns-mnt']);
    expect(lines(setns)).toEqual(['setns-mnt: errno EPERM']);
  });

  it('unshare(CLONE_NEWNS) (a private mount namespace) is a violation', async () => {
    expectViolation(await probe(['unshare-mnt']), 'unshare', 'unshare-mnt');
  });
});

describe('no way above the root', () => {
  it('"/..", "/proc/self/root/..", 64 chdir("..") and openat(/, "../../../..") all end at the sandbox root, which is not the host root', async () => {
    const c = await probe(['dotdot']);
    expect(c.result.status).toBe('OK');
    const out = lines(c);
    const root = out[0]!.replace(/^\/: /, '');
    const host = statSync('/');
    expect(root).not.toBe(`${host.dev}:${host.ino}`);
    expect(out).toEqual([
      `/: ${root}`,
      `/../../..: ${root}`,
      `/proc/self/root/..: ${root}`,
      `/tmp/../..: ${root}`,
      `cwd after 64 chdir ..: ${root}`,
      'getcwd: /',
      'openat(/, ../../../..) is /: yes',
    ]);
  });
});

describe('/proc/sys, /proc/self and /sys refuse writes', () => {
  it('kernel tunables in /proc/sys: EACCES, and they keep their values', async () => {
    const paths = [
      '/proc/sys/kernel/core_pattern',
      '/proc/sys/kernel/hostname',
      '/proc/sys/vm/drop_caches',
      '/proc/sys/user/max_user_namespaces',
      '/proc/sys/net/ipv4/ip_forward',
    ];
    const before = readFileSync('/proc/sys/kernel/core_pattern', 'utf8');
    const { stdout, result } = await sh(paths.map((p) => `${'$P'} write ${p}`).join('; '), {
      policy: escapePolicy(),
      executor: { env: { P: probePath() } },
    });
    expect(result.status).toBe('OK');
    expect(stdout.trim().split('\n')).toEqual(paths.map((p) => `${p}: errno EACCES`));
    expect(readFileSync('/proc/sys/kernel/core_pattern', 'utf8')).toBe(before);
  });

  it('its own uid_map cannot be rewritten (no way to map root), setgroups is closed', async () => {
    const a = await probe(['write', '/proc/self/uid_map']);
    const b = await probe(['write', '/proc/self/setgroups']);
    // EPERM from the kernel's uid_map rules; EACCES when Landlock's read-only /proc rule refuses the open first
    expect(lines(a)).toEqual([expect.stringMatching(/^\/proc\/self\/uid_map: errno (EPERM|EACCES)$/)]);
    expect(lines(b)).toEqual(['/proc/self/setgroups: errno EACCES']);
  });

  it('/sys is absent unless bound; bound, it is read-only (cgroup v1 release_agent included)', async () => {
    const absent = await sh('ls /sys 2>&1; echo $?');
    expect(absent.stdout).toMatch(/No such file or directory\n2\n$/);

    const candidates = [
      '/sys/kernel/mm/transparent_hugepage/enabled',
      '/sys/fs/cgroup/cpu/release_agent',
      '/sys/fs/cgroup/memory/release_agent',
      '/sys/fs/cgroup/cgroup.subtree_control',
    ];
    const present = candidates.filter((p) => existsSync(p));
    const { stdout, result } = await sh(
      `for f in ${present.join(' ')}; do "$P" write $f; done; touch /sys/sbx-escape 2>&1; mkdir /sys/fs/cgroup/sbx-escape 2>&1; true`,
      {
        policy: escapePolicy((b) => b.addDirectory('/sys')),
        executor: { env: { P: probePath() } },
      },
    );
    expect(result.status).toBe('OK');
    const out = stdout.trim().split('\n');
    // Permission (host root owns them) is checked before the read-only mount: EACCES.
    expect(out.slice(0, present.length)).toEqual(present.map((p) => `${p}: errno EACCES`));
    expect(out[present.length]).toMatch(/Read-only file system/);
    expect(out[present.length + 1]).toMatch(/Read-only file system|Permission denied/);
  });
});

describe('symlinked mount sources and targets', () => {
  it('an identity bind of a host symlink is recreated as a symlink inside: it shows the sandbox view, not the host directory', async () => {
    const link = join(scratch, 'etc-link');
    symlinkSync('/etc', link);
    const { stdout, result } = await sh(`readlink ${link}; ls ${link}/`, {
      policy: escapePolicy((b) => b.addDirectory(link)),
    });
    expect(result.status).toBe('OK');
    // The sandbox's /etc holds only what isolationPolicy binds.
    expect(stdout.trim().split('\n')).toEqual([
      '/etc',
      ...['group', 'ld.so.cache', 'passwd'].filter((f) => existsSync(`/etc/${f}`)),
    ]);
  });

  it('a bind at another path follows the link on the host, and the target keeps its host permissions', async () => {
    const link = join(scratch, 'root-link');
    symlinkSync('/root', link);
    const { stdout, result } = await sh('ls /data 2>&1; cat /data/.profile 2>&1; true', {
      policy: escapePolicy((b) => b.addDirectoryAt(link, '/data')),
    });
    expect(result.status).toBe('OK');
    // /root is 0700 host root; the sandboxee is host nobody (root executor) or the executor's own
    // unprivileged uid: either way not root.
    if (statSync('/root').mode & 0o007) return;
    expect(stdout).toMatch(
      /^ls: cannot open directory '\/data': Permission denied\ncat: \/data\/.profile: Permission denied\n$/,
    );
  });

  it('a symlink planted in a writable host directory cannot lead a mount target onto the host (openat2 RESOLVE_IN_ROOT)', async () => {
    const victim = join(scratch, 'victim');
    const shared = join(scratch, 'shared');
    mkdirSync(victim, { mode: 0o777 });
    mkdirSync(shared, { mode: 0o777 });
    chmodSync(victim, 0o777);
    chmodSync(shared, 0o777);
    symlinkSync(victim, join(shared, 'evil')); // absolute: outside the sandbox's root
    const policy = escapePolicy((b) =>
      b.addDirectoryAt(shared, '/data', { writable: true }).addTmpfs('/data/evil/sub'),
    );
    const { result } = await runCaptured(['/bin/true'], { policy });
    expect(result.status).toBe('SETUP_ERROR');
    expect(result.reason).toMatch(
      /mount: openat2\(\/data\/evil, O_DIRECTORY, RESOLVE_IN_ROOT\): No such file or directory/,
    );
    expect(readdirSync(victim)).toEqual([]); // nothing created or mounted on the host
  });

  it('a dangling symlink as a bind source is a build-time policy error naming it', () => {
    const dangling = join(scratch, 'dangling');
    symlinkSync('/nonexistent-sbx-target', dangling);
    expect(() => new PolicyBuilder().addDirectoryAt(dangling, '/data').build()).toThrow(dangling);
  });
});
