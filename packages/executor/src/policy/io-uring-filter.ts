/**
 * ioUringDenialProgram(): a seccomp program that does only what every sbx filter's always-on
 * io_uring denial does (io_uring_setup/enter/register → its errno, ENOSYS) and allows everything
 * else. A Node forkserver runs under it from its exec (fork-server.ts): libuv (Node 22 and later)
 * opens io_uring rings at start even with UV_USE_IO_URING=0 and falls back to epoll only when
 * io_uring_setup fails; a ring is one kernel object that fork() would share between the
 * forkserver and all its children. It carries none of the other denials: the forkserver's
 * children still need seccomp's NEW_LISTENER and Landlock for their own walls, which their own
 * filters (sandboxMeHere) then stack on this one.
 */
import {
  BPF_ABS,
  BPF_ALU,
  BPF_AND,
  BPF_JEQ,
  BPF_JMP,
  BPF_K,
  BPF_LD,
  BPF_RET,
  BPF_W,
  SECCOMP_DATA_NR,
  SECCOMP_RET_ALLOW,
  SECCOMP_RET_ERRNO,
  X32_SYSCALL_BIT,
  bpfJump,
  bpfStmt,
  encodeProgram,
} from './bpf.js';
import type { SockFilter } from './bpf.js';
import { ALWAYS_DENIED } from './denials.js';
import { syscallNumber } from './syscalls.js';
import type { Arch } from './syscalls.js';

const IO_URING = ['io_uring_setup', 'io_uring_enter', 'io_uring_register'];

/**
 * The program for `arch`. No architecture check: the io_uring calls have the same numbers in
 * every ABI an x86_64 or aarch64 kernel runs (new syscalls are numbered alike since Linux 5.1),
 * the x32 bit is masked off, and every other call is allowed whatever its ABI.
 */
export function ioUringDenialInsns(arch: Arch): SockFilter[] {
  const denials = IO_URING.map((name) => {
    const d = ALWAYS_DENIED.find((x) => x.name === name);
    const nr = syscallNumber(arch, name);
    if (!d || d.verdict === 'violation' || nr === undefined)
      throw new Error(`io_uring denial: no errno denial of ${name} on ${arch}`);
    return { nr, errno: d.verdict.errno };
  });
  const errno = denials[0]!.errno;
  if (denials.some((d) => d.errno !== errno)) throw new Error('io_uring denial: the three calls must share one errno');
  const n = denials.length;
  return [
    bpfStmt(BPF_LD | BPF_W | BPF_ABS, SECCOMP_DATA_NR),
    bpfStmt(BPF_ALU | BPF_AND | BPF_K, ~X32_SYSCALL_BIT),
    // each jeq: on a match skip to the errno ret (after the remaining jeqs and the allow)
    ...denials.map((d, i) => bpfJump(BPF_JMP | BPF_JEQ | BPF_K, d.nr, n - i, 0)),
    bpfStmt(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    bpfStmt(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | errno),
  ];
}

/** ioUringDenialInsns() as struct sock_filter[] bytes (what the forkserver's SECCOMP op carries). */
export function ioUringDenialProgram(arch: Arch): Uint8Array {
  return encodeProgram(ioUringDenialInsns(arch));
}
