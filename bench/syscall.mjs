// Per-syscall cost of sbx's seccomp programs and the cost of building one.
//
// native/testcases/syscall_loop installs a program read from a file (no listener, no sandbox:
// it runs directly) and times getppid() (argument-free: the kernel's action cache decides it
// without running the filter) and getpriority(PRIO_PROCESS, 0) (its rule checks an argument, so
// the filter runs on every call). The policy has ~150 rules; getpriority's number (140) sits
// after most of them in a linear chain. The same policy is compiled with the binary-search
// dispatch sbx uses and with a linear jeq chain, and both are compared with no filter at all.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { PolicyBuilder, syscallNumber } from '@sbx/executor';
import { ALLOW, ARG_32, BPF_JEQ, BPF_JMP, BPF_K, JNE, LABEL, compilePolicy } from '@sbx/executor/bpf';

const root = join(import.meta.dirname, '..');
const loopBin = join(root, 'native', 'build', 'testcases', 'syscall_loop');

/** A broad allowlist of 150 real x86_64 syscalls (what a shell or a Node runtime policy allows). */
const ALLOWED = [
  'read',
  'write',
  'open',
  'close',
  'stat',
  'fstat',
  'lstat',
  'poll',
  'lseek',
  'mmap',
  'mprotect',
  'munmap',
  'brk',
  'rt_sigaction',
  'rt_sigprocmask',
  'rt_sigreturn',
  'ioctl',
  'pread64',
  'pwrite64',
  'readv',
  'writev',
  'access',
  'pipe',
  'select',
  'sched_yield',
  'mremap',
  'msync',
  'mincore',
  'madvise',
  'dup',
  'dup2',
  'pause',
  'nanosleep',
  'getitimer',
  'alarm',
  'setitimer',
  'getpid',
  'sendfile',
  'sendmsg',
  'recvmsg',
  'clone',
  'fork',
  'vfork',
  'execve',
  'exit',
  'wait4',
  'kill',
  'uname',
  'fcntl',
  'fsync',
  'fdatasync',
  'truncate',
  'ftruncate',
  'getdents',
  'getcwd',
  'chdir',
  'fchdir',
  'rename',
  'mkdir',
  'rmdir',
  'creat',
  'link',
  'unlink',
  'symlink',
  'readlink',
  'chmod',
  'fchmod',
  'umask',
  'gettimeofday',
  'getrlimit',
  'getrusage',
  'sysinfo',
  'times',
  'getuid',
  'getgid',
  'geteuid',
  'getegid',
  'setpgid',
  'getppid',
  'getpgrp',
  'setsid',
  'getgroups',
  'getresuid',
  'getresgid',
  'getpgid',
  'getsid',
  'capget',
  'rt_sigpending',
  'rt_sigtimedwait',
  'rt_sigsuspend',
  'sigaltstack',
  'statfs',
  'fstatfs',
  'sched_getparam',
  'sched_getscheduler',
  'sched_get_priority_max',
  'sched_get_priority_min',
  'prctl',
  'gettid',
  'tkill',
  'time',
  'futex',
  'sched_getaffinity',
  'set_tid_address',
  'fadvise64',
  'clock_gettime',
  'clock_getres',
  'clock_nanosleep',
  'exit_group',
  'epoll_wait',
  'epoll_ctl',
  'tgkill',
  'waitid',
  'openat',
  'mkdirat',
  'newfstatat',
  'unlinkat',
  'renameat',
  'linkat',
  'symlinkat',
  'readlinkat',
  'fchmodat',
  'faccessat',
  'pselect6',
  'ppoll',
  'set_robust_list',
  'get_robust_list',
  'utimensat',
  'epoll_pwait',
  'signalfd4',
  'timerfd_create',
  'eventfd2',
  'timerfd_settime',
  'timerfd_gettime',
  'epoll_create1',
  'dup3',
  'pipe2',
  'preadv',
  'pwritev',
  'prlimit64',
  'getrandom',
  'memfd_create',
  'statx',
  'rseq',
  'copy_file_range',
  'preadv2',
  'pwritev2',
  'faccessat2',
  'epoll_pwait2',
  'close_range',
];

function benchPolicy() {
  return (
    new PolicyBuilder()
      .allowSyscalls(ALLOWED)
      // getpriority(PRIO_PROCESS, ...) only: the verdict depends on argument 0.
      .addPolicyOnSyscall('getpriority', [ARG_32(0), JNE(0, 'end'), ALLOW, LABEL('end')])
      .build()
  );
}

/** Index (1-based) of the `jeq nr` that leads to getpriority's leaf in a linear program. */
function linearPosition(insns) {
  const nr = syscallNumber('x86_64', 'getpriority');
  let k = 0;
  for (const i of insns) {
    if (i.code === (BPF_JMP | BPF_JEQ | BPF_K)) {
      k++;
      if (i.k === nr) return k;
    }
  }
  return -1;
}

/** Calls per timed round, rounds per process (the best round counts), processes per configuration. */
const CALLS = 100_000;
const ROUNDS = 5;
const PROCESSES = 11;
/** Every run on one CPU (the last one): vCPUs of a VM can differ in speed from moment to moment. */
const CPU = availableParallelism() - 1;

function runLoop(file) {
  const r = spawnSync(loopBin, [file, String(CALLS), String(ROUNDS), String(CPU)], {
    encoding: 'utf8',
    timeout: 30_000,
  });
  if (r.error) throw new Error(`syscall_loop ${file}: ${r.error.message}`);
  if (r.status !== 0) {
    const how = r.signal
      ? `killed by ${r.signal}${r.signal === 'SIGSYS' ? ' (the filter denied a syscall it makes)' : ''}`
      : `exit ${r.status}`;
    throw new Error(`syscall_loop ${file}: ${how}: ${r.stderr.trim()}`);
  }
  return JSON.parse(r.stdout);
}

function buildCompileMicros(n) {
  const once = () => {
    const t0 = performance.now();
    const p = new PolicyBuilder().allowNodeRuntime().build();
    compilePolicy(p, { cache: false, monitor: true });
    return (performance.now() - t0) * 1000;
  };
  for (let i = 0; i < 30; i++) once();
  const xs = [];
  for (let i = 0; i < n; i++) xs.push(once());
  return median(xs);
}

export async function syscallBench() {
  if (process.arch !== 'x64') throw new Error(`the syscall bench is written for x86_64 (this is ${process.arch})`);
  if (!existsSync(loopBin)) throw new Error(`${loopBin} is not built: run node native/build.mjs`);

  const policy = benchPolicy();
  const dir = mkdtempSync(join(tmpdir(), 'sbx-bench-syscall-'));
  try {
    const progs = {};
    for (const dispatch of ['binary', 'linear']) {
      const c = compilePolicy(policy, { dispatch, monitor: false, cache: false });
      const file = join(dir, `${dispatch}.bpf`);
      writeFileSync(file, c.program);
      progs[dispatch] = { file, length: c.length, depth: c.stats.depth, insns: c.insns };
    }
    const configs = { none: '-', binary: progs.binary.file, linear: progs.linear.file };
    const runs = { none: [], binary: [], linear: [] };
    // Interleaved, so drifts (frequency, other load) hit every configuration alike.
    for (let rep = 0; rep < PROCESSES; rep++)
      for (const [k, file] of Object.entries(configs)) runs[k].push(runLoop(file));
    const m = {};
    for (const k of Object.keys(runs)) {
      m[k] = { ppid: median(runs[k].map((r) => r.getppid_ns)), prio: median(runs[k].map((r) => r.getpriority_ns)) };
    }
    // Overheads are paired: each filtered run against the unfiltered run of the same round.
    const over = (k) => median(runs[k].map((r, i) => r.getpriority_ns - runs.none[i].getpriority_ns));
    const overBinary = over('binary');
    const overLinear = over('linear');
    const buildUs = buildCompileMicros(200);
    const nRules = policy.rules.length;
    const bin = `binary search, ${nRules} rules, ${progs.binary.length} insns, depth ${progs.binary.depth}`;
    const lin = `linear chain, ${progs.linear.length} insns, getpriority at jeq #${linearPosition(progs.linear.insns)}`;
    return [
      {
        name: `getppid (allowed, arg-free), ${bin}`,
        unit: 'ns/call',
        value: m.binary.ppid,
        peer: 'no filter',
        peerValue: m.none.ppid,
        goal: '<= 1.2×',
      },
      {
        name: `getppid (allowed, arg-free), linear chain`,
        unit: 'ns/call',
        value: m.linear.ppid,
        peer: 'no filter',
        peerValue: m.none.ppid,
      },
      {
        name: `getpriority (arg-checked), ns over no filter (paired median), binary search`,
        unit: 'ns/call',
        value: overBinary,
        peer: lin,
        peerValue: overLinear,
        goal: '<= 0.5×',
      },
      {
        name: `getpriority (arg-checked), binary search`,
        unit: 'ns/call',
        value: m.binary.prio,
        peer: 'no filter',
        peerValue: m.none.prio,
      },
      {
        name: 'allowNodeRuntime() build + compile (cache off)',
        unit: 'µs',
        value: buildUs,
        peer: '1 ms spawn budget (fixed, not measured)',
        peerValue: 1000,
      },
    ];
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}
