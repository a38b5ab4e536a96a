import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { SYSCALL_TABLES, errnoName, errnoNumber, suggestNames, syscallName, syscallNumber } from './syscalls.js';

const here = dirname(fileURLToPath(import.meta.url));

describe('syscall tables', () => {
  it('hold well-known numbers for each architecture', () => {
    expect(syscallNumber('x86_64', 'read')).toBe(0);
    expect(syscallNumber('x86_64', 'execveat')).toBe(322);
    expect(syscallNumber('x86_64', 'io_uring_setup')).toBe(425);
    expect(syscallNumber('x86_64', 'mseal')).toBe(462);
    expect(syscallNumber('aarch64', 'openat')).toBe(56);
    expect(syscallNumber('aarch64', 'fcntl')).toBe(25);
    expect(syscallNumber('aarch64', 'mmap')).toBe(222);
    expect(syscallNumber('aarch64', 'open')).toBeUndefined();
    expect(syscallNumber('aarch64', 'fcntl64')).toBeUndefined();
    expect(syscallName('i386', 102)).toBe('socketcall');
    expect(syscallName('x86_64', 231)).toBe('exit_group');
    expect(SYSCALL_TABLES.x86_64.maxNr).toBeGreaterThanOrEqual(469);
  });

  it('map names and numbers both ways', () => {
    for (const t of Object.values(SYSCALL_TABLES)) {
      for (const [_name, nr] of t.byName) expect(t.byName.get(t.byNumber.get(nr)!)).toBe(nr);
      expect(t.byName.size).toBeGreaterThan(300);
    }
  });

  it('are up to date with the generator', () => {
    if (
      !existsSync('/usr/include/x86_64-linux-gnu/asm/unistd_64.h') ||
      !existsSync('/usr/include/asm-generic/unistd.h')
    ) {
      console.warn('skipped: kernel UAPI headers are not installed (linux-libc-dev)');
      return;
    }
    const script = join(here, '..', '..', 'scripts', 'gen-syscalls.mjs');
    expect(() => execFileSync(process.execPath, [script, '--check'], { stdio: 'pipe' })).not.toThrow();
  });
});

describe('errno names', () => {
  it('resolve both ways', () => {
    expect(errnoNumber('EPERM')).toBe(1);
    expect(errnoNumber('ENOSYS')).toBe(38);
    expect(errnoNumber('EWOULDBLOCK')).toBe(11);
    expect(errnoName(11)).toBe('EAGAIN');
    expect(errnoNumber('EPREM')).toBeUndefined();
  });
});

describe('suggestNames()', () => {
  it('suggests close names first', () => {
    expect(suggestNames('opne', SYSCALL_TABLES.x86_64.byName.keys())[0]).toBe('open');
    expect(suggestNames('fstatat', SYSCALL_TABLES.x86_64.byName.keys())).toContain('newfstatat');
    expect(suggestNames('zzzzzzzzzzzz', ['read'])).toEqual([]);
  });
});
