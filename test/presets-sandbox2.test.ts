// Sandbox2's remaining Allow* presets, enforced on a real sandboxee (native/testcases/preset_probe):
// per family, the allowed calls reach the kernel, and a call outside the preset (or with an
// argument the preset refuses) is a violation naming that syscall.
import { describe, expect, it } from 'vitest';
import { Limits, PolicyBuilder, loadPolicyFile, type LimitsOptions } from '@sbx/executor';
import { ALLOW, ARG, ARG_32, JEQ, JNE, LABEL } from '@sbx/executor/bpf';
import { runCaptured, testcase } from './helpers.js';

const PROT_READ = 1;
const PROT_WRITE = 2;
const PROT_EXEC = 4;

/**
 * What the dynamic probe needs to start and print, with no preset under test in it: mprotect to
 * PROT_READ only (the loader's RELRO), mmap of files or RW anonymous memory only, getrandom with
 * GRND_NONBLOCK only (malloc's seed), no futex, no madvise, no prctl.
 */
function base(): PolicyBuilder {
  const probe = testcase('preset_probe');
  const b = new PolicyBuilder()
    .allowOpen()
    .allowRead()
    .allowStat()
    .allowAccess()
    .allowWrite()
    .allowExit()
    .allowSyscalls(['lseek', 'close', 'munmap', 'brk', 'set_tid_address', 'set_robust_list', 'rseq'])
    .addPolicyOnSyscall('mprotect', [ARG_32(2), JNE(PROT_READ, 'end'), ALLOW, LABEL('end')])
    .addPolicyOnMmap([
      ARG_32(4),
      JNE(0xffffffff, 'ok'),
      ARG_32(2),
      JEQ(PROT_READ | PROT_WRITE, 'ok', 'end'),
      LABEL('ok'),
      ALLOW,
      LABEL('end'),
    ])
    .addPolicyOnSyscall('getrandom', [ARG_32(2), JNE(1, 'end'), ALLOW, LABEL('end')])
    .addPolicyOnSyscall('prlimit64', [ARG(2), JNE(0, 'end'), ALLOW, LABEL('end')])
    .addPolicyOnSyscall('arch_prctl', [ARG_32(0), JNE(0x1002, 'end'), ALLOW, LABEL('end')])
    .addLibrariesForBinary(probe)
    .addTmpfs('/tmp', { sizeBytes: 1 << 20 });
  return b;
}

async function probe(args: string[], extra: (b: PolicyBuilder) => void = () => {}, limits: LimitsOptions = {}) {
  const b = base();
  extra(b);
  const { result, stdout, stderr } = await runCaptured([testcase('preset_probe'), ...args], {
    policy: b.build(),
    executor: { limits: { walltime: 20, ...limits } },
  });
  return { result, stdout, stderr, lines: stdout.trim().split('\n').filter(Boolean) };
}

function expectViolation(r: Awaited<ReturnType<typeof probe>>, syscall: string) {
  expect(r.result.status, `${r.stdout}${r.stderr}`).toBe('VIOLATION');
  expect(r.result.violation?.syscall).toBe(syscall);
}

function expectOk(r: Awaited<ReturnType<typeof probe>>) {
  expect(r.result.status, `${r.stdout}${r.stderr}`).toBe('OK');
  expect(r.result.exitCode).toBe(0);
}

describe('the base policy of the probe', () => {
  it('starts the probe and nothing more', async () => {
    const r = await probe(['none']);
    expectOk(r);
    expect(r.lines).toEqual(['none: ok']);
  });
});

describe('files and fds', () => {
  const all = (b: PolicyBuilder) =>
    b
      .allowGetIds()
      .allowMkdir()
      .allowChmod()
      .allowChown()
      .allowUtime()
      .allowLink()
      .allowSymlink()
      .allowReadlink()
      .allowRename()
      .allowReaddir()
      .allowUnlink();

  it('every file preset lets its calls through', async () => {
    const r = await probe(['files'], all);
    expectOk(r);
    for (const c of [
      'mkdir',
      'open',
      'chmod',
      'chown',
      'utime',
      'link',
      'symlink',
      'readlink',
      'rename',
      'unlink',
      'rmdir',
    ])
      expect(r.lines).toContain(`${c}: ok`);
    expect(r.lines).toContain('entries: 5'); // . .. f s h
  });

  it('a missing preset stops its call: no allowUnlink, unlink is a violation', async () => {
    const r = await probe(['files'], (b) =>
      b
        .allowGetIds()
        .allowMkdir()
        .allowChmod()
        .allowChown()
        .allowUtime()
        .allowLink()
        .allowSymlink()
        .allowReadlink()
        .allowRename()
        .allowReaddir(),
    );
    expectViolation(r, 'unlink');
    expect(r.lines).toContain('entries: 5');
  });

  it('allowDup, allowPipe', async () => {
    expectOk(await probe(['dup'], (b) => b.allowDup()));
    expectViolation(await probe(['dup']), 'dup');
    const p = await probe(['pipe'], (b) => b.allowPipe());
    expectOk(p);
    expect(p.lines).toEqual(['pipe2: ok']);
  });

  it('allowTCGETS lets ioctl(TCGETS) reach the kernel and stops any other request', async () => {
    const r = await probe(['tcgets'], (b) => b.allowTCGETS());
    expectOk(r);
    expect(r.lines).toEqual(['tcgets: errno ENOTTY']); // stdin is /dev/null: answered by the kernel
    expectViolation(await probe(['tiocgwinsz'], (b) => b.allowTCGETS()), 'ioctl');
  });
});

describe('event waiting', () => {
  it('allowEventFd, allowEpoll, allowEpollWait, allowPoll, allowSelect, allowInotify', async () => {
    const r = await probe(['events'], (b) =>
      b.allowEventFd().allowEpoll().allowEpollWait().allowPoll().allowSelect().allowInotify(),
    );
    expectOk(r);
    for (const c of [
      'eventfd',
      'epoll_create1',
      'epoll_ctl',
      'epoll_wait',
      'poll',
      'select',
      'inotify_init1',
      'inotify_add_watch',
      'inotify_rm_watch',
    ])
      expect(r.lines).toContain(`${c}: ok`);
  });

  it('without allowPoll, poll is a violation', async () => {
    const r = await probe(['events'], (b) => b.allowEventFd().allowEpoll().allowEpollWait());
    expectViolation(r, 'poll');
  });
});

describe('processes, signals and limits', () => {
  it('allowFork, allowWait, allowGetPGIDs', async () => {
    const r = await probe(['processes'], (b) => b.allowFork().allowWait().allowGetPGIDs());
    expectOk(r);
    expect(r.lines).toEqual(
      expect.arrayContaining(['fork: ok', 'wait4: ok', 'child exit: 7', 'getpgid: ok', 'getpgrp: ok']),
    );
    expectViolation(await probe(['processes'], (b) => b.allowFork().allowGetPGIDs()), 'wait4');
  });

  it('allowHandleSignals with allowKill: a handler runs on a signal sent to itself', async () => {
    const r = await probe(['signals'], (b) => b.allowHandleSignals().allowKill().allowGetPid());
    expectOk(r);
    expect(r.lines).toEqual(expect.arrayContaining(['sigaction: ok', 'kill: ok', 'handled: 1', 'tgkill: ok']));
    expectViolation(await probe(['signals'], (b) => b.allowHandleSignals().allowGetPid()), 'kill');
  });

  it('allowKill reaches no process outside the sandbox', async () => {
    const r = await probe(['kill-pid', String(process.pid)], (b) => b.allowKill());
    expectOk(r);
    expect(r.lines).toEqual(['kill-pid: errno ESRCH']); // this process is not in the sandbox's pid namespace
  });

  it('allowGetRlimit reads; allowSetRlimit lowers its own limit only', async () => {
    expectOk(await probe(['getrlimit'], (b) => b.allowGetRlimit()));
    const low = await probe(['setrlimit-self'], (b) => b.allowGetRlimit().allowSetRlimit());
    expectOk(low);
    expect(low.lines).toEqual(['setrlimit-self: ok', 'nofile: 64 1024']);
    // Without allowSetRlimit the base only reads: setting is a violation.
    expectViolation(await probe(['setrlimit-self'], (b) => b.allowGetRlimit()), 'prlimit64');
    // Another process (pid 1: the sandbox's init) is refused by argument.
    expectViolation(await probe(['setrlimit-other', '1'], (b) => b.allowSetRlimit()), 'prlimit64');
    // Raising the hard limit reaches the kernel, which refuses it.
    const raise = await probe(['setrlimit-raise'], (b) => b.allowGetRlimit().allowSetRlimit());
    expect(raise.lines).toEqual(['setrlimit-raise: errno EPERM']);
  });

  it('allowPrctlSetName and allowPrctlSetVma check the option', async () => {
    expectOk(await probe(['prctl-name'], (b) => b.allowPrctlSetName()));
    expectViolation(await probe(['prctl-dumpable'], (b) => b.allowPrctlSetName().allowPrctlSetVma()), 'prctl');
    const vma = await probe(['prctl-vma', '0'], (b) => b.allowPrctlSetVma());
    expectOk(vma); // ok, or EINVAL on a kernel without CONFIG_ANON_VMA_NAME: either way it reached the kernel
    expect(vma.lines[0]).toMatch(/^prctl-vma: (ok|errno EINVAL)$/);
    expectViolation(await probe(['prctl-vma', '1'], (b) => b.allowPrctlSetVma()), 'prctl');
    expectViolation(await probe(['prctl-vma', '0'], (b) => b.allowPrctlSetName()), 'prctl');
  });
});

describe('separate soft and hard rlimits', () => {
  it('the sandboxee starts at the soft limit and may raise it to the hard one, not beyond', async () => {
    const limits = { rlimitNofile: { soft: 64, hard: 256 } };
    const r = await probe(['nofile'], (b) => b.allowGetRlimit(), limits);
    expect(r.lines).toEqual(['nofile: 64 256']);
    const up = await probe(['setrlimit-soft-to-hard'], (b) => b.allowGetRlimit().allowSetRlimit(), limits);
    expect(up.lines).toEqual(['setrlimit-soft-to-hard: ok', 'nofile: 256 256']);
    const over = await probe(['setrlimit-raise'], (b) => b.allowGetRlimit().allowSetRlimit(), limits);
    expect(over.lines).toEqual(['setrlimit-raise: errno EPERM']);
    // A plain number is both.
    expect((await probe(['nofile'], (b) => b.allowGetRlimit(), { rlimitNofile: 100 })).lines).toEqual([
      'nofile: 100 100',
    ]);
  });

  it('a soft limit above the hard one, or half a pair, is a TypeError naming the limit', () => {
    expect(() => new Limits({ rlimitNofile: { soft: 10, hard: 5 } })).toThrow(
      /limits.rlimitNofile: soft \(10\) is above hard \(5\)/,
    );
    // @ts-expect-error hard is missing
    expect(() => new Limits({ rlimitCpu: { soft: 10 } })).toThrow(/rlimitCpu.*without hard/);
    expect(() => new Limits({ rlimitAs: { soft: -1, hard: 5 } })).toThrow(
      /rlimitAs.soft must be a non-negative integer/,
    );
    const l = new Limits({ rlimitAs: { soft: 1 << 30, hard: 2 ** 31 } });
    expect(l.rlimitAs).toBe(2n ** 31n);
    expect(l.soft.rlimitAs).toBe(1n << 30n);
    expect(l.soft.rlimitFsize).toBe(1n << 30n); // the file-size default follows the memory bound, both halves
  });
});

describe('time and randomness', () => {
  it('allowAlarm and allowPosixTimers', async () => {
    const r = await probe(['timers'], (b) => b.allowAlarm().allowPosixTimers());
    expectOk(r);
    for (const c of [
      'alarm',
      'setitimer',
      'timer_create',
      'timer_settime',
      'timer_gettime',
      'timer_getoverrun',
      'timer_delete',
    ])
      expect(r.lines).toContain(`${c}: ok`);
    expectViolation(await probe(['timers'], (b) => b.allowAlarm()), 'timer_create');
  });

  it('allowGetRandom allows flags 0 and GRND_NONBLOCK, not GRND_RANDOM', async () => {
    expectViolation(await probe(['getrandom', '0']), 'getrandom');
    expectOk(await probe(['getrandom', '0'], (b) => b.allowGetRandom()));
    expectViolation(await probe(['getrandom', '2'], (b) => b.allowGetRandom()), 'getrandom');
  });
});

describe('memory', () => {
  it('allowMprotectWithoutExec refuses PROT_EXEC; allowMprotect allows it', async () => {
    expectOk(await probe(['mprotect', String(PROT_READ | PROT_WRITE)], (b) => b.allowMprotectWithoutExec()));
    expectViolation(
      await probe(['mprotect', String(PROT_READ | PROT_EXEC)], (b) => b.allowMprotectWithoutExec()),
      'mprotect',
    );
    expectOk(await probe(['mprotect', String(PROT_READ | PROT_EXEC)], (b) => b.allowMprotect()));
  });

  it('allowMmapWithoutExec refuses PROT_EXEC', async () => {
    expectViolation(await probe(['mmap', String(PROT_READ)]), 'mmap');
    expectOk(await probe(['mmap', String(PROT_READ)], (b) => b.allowMmapWithoutExec()));
    expectViolation(await probe(['mmap', String(PROT_READ | PROT_EXEC)], (b) => b.allowMmapWithoutExec()), 'mmap');
  });

  it('allowMlock', async () => {
    const r = await probe(['mlock'], (b) => b.allowMlock());
    expectOk(r);
    expect(r.lines).toEqual(['mlock: ok', 'munlock: ok']);
  });

  it('allowWipeOnFork allows MADV_WIPEONFORK only', async () => {
    expectOk(await probe(['madvise', '18'], (b) => b.allowWipeOnFork()));
    expectViolation(await probe(['madvise', '10'], (b) => b.allowWipeOnFork()), 'madvise'); // MADV_DONTFORK
  });

  it('allowFutexOp checks the operation, with or without FUTEX_PRIVATE_FLAG', async () => {
    const wakePrivate = String(1 | 128);
    expectOk(await probe(['futex', wakePrivate], (b) => b.allowFutexOp('FUTEX_WAKE')));
    expectOk(await probe(['futex', '1'], (b) => b.allowFutexOp(1)));
    const waitPrivate = String(0 | 128);
    expectViolation(await probe(['futex', waitPrivate], (b) => b.allowFutexOp('FUTEX_WAKE')), 'futex');
    const wait = await probe(['futex', waitPrivate], (b) => b.allowFutexOp('FUTEX_WAKE').allowFutexOp('FUTEX_WAIT'));
    expect(wait.lines).toEqual(['futex: errno EAGAIN']); // the word is 0, not 1: answered by the kernel
  });

  it('allowRestartableSequences: private membarrier commands only', async () => {
    const q = await probe(['membarrier', '0'], (b) => b.allowRestartableSequences());
    expectOk(q);
    expectOk(await probe(['getcpu'], (b) => b.allowRestartableSequences()));
    expectViolation(await probe(['membarrier', '1'], (b) => b.allowRestartableSequences()), 'membarrier'); // GLOBAL
  });
});

describe('builder checks', () => {
  it('allowFutexOp refuses what is not a futex operation', () => {
    expect(() => new PolicyBuilder().allowFutexOp('FUTEX_FD').build()).toThrow(
      /allowFutexOp\("FUTEX_FD"\): not a futex operation/,
    );
    expect(() => new PolicyBuilder().allowFutexOp(129).build()).toThrow(/without FUTEX_PRIVATE_FLAG/);
    // @ts-expect-error a wrong type is a TypeError at once
    expect(() => new PolicyBuilder().allowFutexOp(null)).toThrow(TypeError);
  });

  it('addFileIfExists / addDirectoryIfExists skip missing or wrong-type paths; the plain forms do not', () => {
    const p = new PolicyBuilder()
      .addFileIfExists('/nonexistent/file')
      .addDirectoryIfExists('/nonexistent/dir')
      .addFileIfExists('/usr')
      .addDirectoryIfExists('/etc/hostname')
      .addDirectoryIfExists('/usr')
      .build();
    expect(p.mounts.map((m) => m.inside)).toEqual(['/usr']);
    expect(() => new PolicyBuilder().addFile('/nonexistent/file').build()).toThrow(/ENOENT/);
    // A bad path is still a problem.
    expect(() => new PolicyBuilder().addFileIfExists('relative').build()).toThrow(/must be absolute/);
  });

  it('policy files name the presets in kebab-case and get the same rules', () => {
    const fromFile = loadPolicyFile({ presets: ['dup', 'get-random', 'mprotect-without-exec', 'set-rlimit'] }).build();
    const fromBuilder = new PolicyBuilder()
      .allowDup()
      .allowGetRandom()
      .allowMprotectWithoutExec()
      .allowSetRlimit()
      .build();
    expect(fromFile.rules).toEqual(fromBuilder.rules);
    expect(() => loadPolicyFile({ presets: ['futex-op'] })).toThrow(/must be one of/);
  });

  it('addPolicyOnMmap is addPolicyOnSyscall on mmap', () => {
    const p = new PolicyBuilder().addPolicyOnMmap([ALLOW]).build();
    expect(p.rules.map((r) => r.name)).toEqual(['mmap']);
  });
});
