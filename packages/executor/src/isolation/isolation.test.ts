// isolation.test.ts: the pure parts of isolation.ts and landlock.ts (the sandboxes themselves are
// in test/landlock-isolation.test.ts).
import { describe, expect, it } from 'vitest';
import { namespacesUnavailable } from './isolation.js';
import { FsAccess, hostLandlockRules } from './landlock.js';

describe('namespacesUnavailable', () => {
  it('names landlock isolation when the host refuses namespaces', () => {
    for (const m of [
      'clone(CLONE_PIDFD|CLONE_NEWUSER|CLONE_NEWNS|CLONE_NEWPID): Operation not permitted (Hint: ...)',
      'clone3(CLONE_PIDFD|CLONE_NEWUSER|CLONE_NEWNS): No space left on device',
      'mount: mount_setattr(/, MS_REC|MS_PRIVATE): Operation not permitted',
      'ids: setresuid(1000): Operation not permitted',
      'user namespace: write(/proc/42/uid_map, "1000 65534 1"): Operation not permitted',
    ]) {
      const out = namespacesUnavailable(m);
      expect(out, m).toMatch(/^namespaces are not available on this host: /);
      expect(out).toContain(m);
      expect(out).toMatch(/isolation: 'landlock' \(sbx run --isolation landlock\)/);
    }
  });

  it('leaves other failures alone', () => {
    for (const m of [
      'open(/usr/bin/x): No such file or directory',
      'clone3(CLONE_PIDFD): Resource temporarily unavailable',
      'mount: open_tree(/opt/x, OPEN_TREE_CLONE | AT_RECURSIVE): No such file or directory',
      'mount: open_tree(/root/secret, OPEN_TREE_CLONE | AT_RECURSIVE): Permission denied',
      'mount: openat2(/srv/x, O_DIRECTORY, RESOLVE_IN_ROOT): Permission denied',
      'exec: execveat(/usr/bin/true): Permission denied',
    ])
      expect(namespacesUnavailable(m), m).toBeNull();
  });
});

describe('hostLandlockRules', () => {
  it('allows the host paths themselves: no rule on /, /dev as its five devices, /proc read-only', () => {
    const rules = hostLandlockRules([
      { type: 'bind', outside: '/usr', inside: '/usr', writable: false },
      { type: 'bind', outside: '/srv/data', inside: '/srv/data', writable: true },
      { type: 'proc', inside: '/proc' },
      { type: 'dev', inside: '/dev' },
      { type: 'tmpfs', inside: '/tmp/sbx-tmp-x', sizeBytes: 0 },
    ]);
    expect(rules.some((r) => r.path === '/')).toBe(false);
    const at = (p: string) => rules.find((r) => r.path === p)?.access ?? 0;
    expect(at('/usr') & FsAccess.EXECUTE).toBeTruthy();
    expect(at('/usr') & FsAccess.WRITE_FILE).toBe(0);
    expect(at('/srv/data') & FsAccess.MAKE_REG).toBeTruthy();
    expect(at('/proc')).toBe(FsAccess.READ_FILE | FsAccess.READ_DIR);
    expect(rules.filter((r) => r.path.startsWith('/dev/')).map((r) => r.path)).toEqual([
      '/dev/null',
      '/dev/zero',
      '/dev/full',
      '/dev/random',
      '/dev/urandom',
    ]);
    expect(at('/dev/null') & FsAccess.READ_DIR).toBe(0);
    expect(at('/tmp/sbx-tmp-x') & FsAccess.REMOVE_FILE).toBeTruthy();
  });
});
