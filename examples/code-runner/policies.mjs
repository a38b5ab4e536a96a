// policies.mjs: one policy per language of the code-runner service. Each is an ordinary
// command-line program's policy on a read-only view of the system directories with a small
// tmpfs /tmp and no network; node gets its runtime preset. Built once at start-up and shared
// by every request (a Policy is immutable).
import { existsSync } from 'node:fs';
import { PolicyBuilder } from '@sbx/executor';

const SYSTEM = ['/usr', '/bin', '/lib', '/lib64'];
const ETC = ['/etc/ld.so.cache', '/etc/localtime', '/etc/passwd', '/etc/group'];
const CLI = [
  'getdents64',
  'ioctl',
  'readlink',
  'readlinkat',
  'getcwd',
  'chdir',
  'uname',
  'sysinfo',
  'getrlimit',
  'prlimit64',
  'getrusage',
  'dup',
  'dup2',
  'dup3',
  'pipe',
  'pipe2',
  'fcntl',
  'poll',
  'ppoll',
  'select',
  'pselect6',
  'lseek',
  'umask',
  'rt_sigaction',
  'rt_sigprocmask',
  'rt_sigreturn',
  'sigaltstack',
  'kill',
  'tgkill',
  'clone',
  'fork',
  'vfork',
  'execve',
  'wait4',
  'getpid',
  'getppid',
  'gettid',
  'getuid',
  'geteuid',
  'getgid',
  'getegid',
  'getpgrp',
  'setpgid',
  'getrandom',
  'set_robust_list',
  'rseq',
  'sched_getaffinity',
  'sched_yield',
  'madvise',
  'mremap',
  'prctl',
  'unlink',
  'unlinkat',
  'mkdir',
  'mkdirat',
  'rename',
  'fstatfs',
  'statfs',
  'memfd_create',
  'ftruncate',
];

function base() {
  const b = new PolicyBuilder()
    .allowDynamicStartup()
    .allowSystemMalloc()
    .allowRead()
    .allowWrite()
    .allowOpen()
    .allowStat()
    .allowAccess()
    .allowExit()
    .allowTime()
    .allowSleep()
    .allowFutex()
    .allowSyscalls(CLI)
    // python asks for a unix socket at start-up (to find its user's locale); no network here
    .blockSyscallWithErrno('socket', 'EACCES')
    // glibc falls back to clone when clone3 says ENOSYS (clone3 is always denied otherwise)
    .blockSyscallWithErrno('clone3', 'ENOSYS');
  for (const d of SYSTEM) if (existsSync(d)) b.addDirectory(d);
  for (const f of ETC) if (existsSync(f)) b.addFile(f);
  for (const f of ['/dev/null', '/dev/zero', '/dev/urandom']) b.addFile(f, { writable: true });
  b.addDirectory('/proc');
  b.addTmpfs('/tmp', { sizeBytes: 16 << 20 });
  return b;
}

export const policies = {
  python: base().build(),
  sh: base().build(),
  node: base().allowNodeRuntime({ threads: true }).blockSyscallWithErrno('pkey_alloc', 'ENOSPC').build(),
};

/** The program and arguments that run `code` in each language. */
export const commands = {
  python: (code) => ['/usr/bin/python3', ['-I', '-S', '-c', code]],
  sh: (code) => ['/bin/sh', ['-c', code]],
  // node's JS heap bounded below the sandbox's memory: node starts, the program cannot grow past it
  node: (code) => [process.execPath, ['--max-old-space-size=64', '-e', code]],
};
