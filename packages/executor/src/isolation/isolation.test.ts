// isolation.test.ts: the pure parts of isolation.ts, counters.ts and landlock.ts (the sandboxes themselves are
// in test/landlock-isolation.test.ts).
import { describe, expect, it } from 'vitest';
import { constants } from 'node:os';
import { namespacesUnavailable } from './isolation.js';
import { nameExhaustedCounter } from '../sandbox/counters.js';
import { FailureFlag, SetupStep, type SetupFailure } from '../forkserver/protocol.js';
import { FsAccess, hostLandlockRules } from './landlock.js';

const { EPERM, EACCES, ENOSPC, ENOSYS, ENOENT, EAGAIN, EINVAL } = constants.errno;
const failure = (step: number, errno: number, message: string, flags = 0): SetupFailure => ({
  step,
  errno,
  flags,
  message,
});

describe('namespacesUnavailable', () => {
  it('names landlock isolation when the host refuses namespaces (by step and errno)', () => {
    for (const f of [
      failure(SetupStep.Clone, EPERM, 'clone3(CLONE_PIDFD|CLONE_NEWUSER|CLONE_NEWNS): Operation not permitted'),
      failure(SetupStep.Clone, ENOSPC, 'clone3(CLONE_PIDFD|CLONE_NEWUSER|CLONE_NEWNS): No space left on device'),
      failure(SetupStep.Clone, ENOSYS, 'clone(CLONE_PIDFD|CLONE_NEWUSER): Function not implemented'),
      failure(SetupStep.Mount, EPERM, 'mount: mount_setattr(/, MS_REC|MS_PRIVATE): Operation not permitted'),
      failure(SetupStep.Ids, EPERM, 'ids: setresuid(1000): Operation not permitted'),
      failure(
        SetupStep.IdMap,
        EPERM,
        'user namespace: write(/proc/42/uid_map, "1000 65534 1"): Operation not permitted',
      ),
      failure(SetupStep.Network, EACCES, 'network: socket(AF_INET, SOCK_DGRAM): Permission denied'),
    ]) {
      const out = namespacesUnavailable(f);
      expect(out, f.message).toMatch(/^namespaces are not available on this host: /);
      expect(out).toContain(f.message);
      expect(out).toMatch(/isolation: 'landlock' \(sbx run --isolation landlock\)/);
    }
  });

  it('leaves other failures alone, whatever their message says', () => {
    for (const f of [
      failure(SetupStep.OpenExec, ENOENT, 'open(/usr/bin/x): No such file or directory', FailureFlag.Path),
      failure(SetupStep.Clone, EAGAIN, 'clone3(CLONE_PIDFD): Resource temporarily unavailable'),
      failure(
        SetupStep.Mount,
        ENOENT,
        'mount: open_tree(/opt/x, OPEN_TREE_CLONE | AT_RECURSIVE): No such file or directory',
        FailureFlag.Path,
      ),
      failure(
        SetupStep.Mount,
        EACCES,
        'mount: open_tree(/root/secret, OPEN_TREE_CLONE | AT_RECURSIVE): Permission denied',
        FailureFlag.Path,
      ),
      failure(
        SetupStep.Mount,
        EACCES,
        'mount: openat2(/srv/x, O_DIRECTORY, RESOLVE_IN_ROOT): Permission denied',
        FailureFlag.Path,
      ),
      failure(SetupStep.Exec, EACCES, 'exec: execveat(/usr/bin/true): Permission denied'),
      // The text of a refusal, but not its data: not classified (the text is for people only).
      failure(SetupStep.Seccomp, EINVAL, 'clone3(CLONE_NEWUSER): Operation not permitted'),
    ])
      expect(namespacesUnavailable(f), f.message).toBeNull();
  });
});

describe('nameExhaustedCounter', () => {
  it('names the per-user counter from the errno and the step', () => {
    expect(nameExhaustedCounter(failure(SetupStep.Init, 109, 'init: send(...): Too many references'), 1234)).toMatch(
      /fds in flight in unix sockets of host uid 1234 .*RLIMIT_NOFILE/,
    );
    expect(nameExhaustedCounter(failure(SetupStep.Init, EAGAIN, 'init: fork(init and target): x'), null)).toMatch(
      /processes of the sandbox's host uid reached RLIMIT_NPROC/,
    );
    expect(nameExhaustedCounter(failure(SetupStep.Clone, ENOSPC, 'clone3(...): x'), 7)).toMatch(
      /namespaces of host uid 7, or of the forkserver's uid, reached/,
    );
    const plain = failure(SetupStep.Mount, EAGAIN, 'mount: fsopen(tmpfs): Resource temporarily unavailable');
    expect(nameExhaustedCounter(plain, 7)).toBe(plain.message);
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
