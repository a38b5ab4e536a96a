#!/usr/bin/env node
// Generates the syscall and errno tables of the policy compiler from the kernel UAPI headers:
//   src/policy/syscalls-x86_64.ts   from <asm/unistd_64.h>
//   src/policy/syscalls-aarch64.ts  from <asm-generic/unistd.h> (the table arm64 uses)
//   src/policy/syscalls-i386.ts     from <asm/unistd_32.h> (only to name i386 arch violations)
//   src/policy/errnos.ts            from <asm-generic/errno-base.h> and <asm-generic/errno.h>
// The outputs are data and are committed. Run: node packages/executor/scripts/gen-syscalls.mjs
// Options: --include DIR (default /usr/include), --check (exit 1 if a committed file differs).
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const outDir = join(here, '..', 'src', 'policy');
const args = process.argv.slice(2);
const includeDir = args.includes('--include') ? args[args.indexOf('--include') + 1] : '/usr/include';
const check = args.includes('--check');

/**
 * Syscalls newer than the build host's headers (Debian 12 ships Linux 6.1 UAPI, which ends at 450).
 * Since Linux 5.1 (pidfd_send_signal, 424) new syscalls get the same number on every table, so one
 * list serves all three. Numbers from the kernel's syscall tables up to 6.18. A header that has a
 * number wins; a header that disagrees with this list about a name stops the generator.
 */
const NEWER = [
  [451, 'cachestat', ['x86_64', 'aarch64', 'i386']],
  [452, 'fchmodat2', ['x86_64', 'aarch64', 'i386']],
  [453, 'map_shadow_stack', ['x86_64', 'aarch64']],
  [454, 'futex_wake', ['x86_64', 'aarch64', 'i386']],
  [455, 'futex_wait', ['x86_64', 'aarch64', 'i386']],
  [456, 'futex_requeue', ['x86_64', 'aarch64', 'i386']],
  [457, 'statmount', ['x86_64', 'aarch64', 'i386']],
  [458, 'listmount', ['x86_64', 'aarch64', 'i386']],
  [459, 'lsm_get_self_attr', ['x86_64', 'aarch64', 'i386']],
  [460, 'lsm_set_self_attr', ['x86_64', 'aarch64', 'i386']],
  [461, 'lsm_list_modules', ['x86_64', 'aarch64', 'i386']],
  [462, 'mseal', ['x86_64', 'aarch64', 'i386']],
  [463, 'setxattrat', ['x86_64', 'aarch64', 'i386']],
  [464, 'getxattrat', ['x86_64', 'aarch64', 'i386']],
  [465, 'listxattrat', ['x86_64', 'aarch64', 'i386']],
  [466, 'removexattrat', ['x86_64', 'aarch64', 'i386']],
  [467, 'open_tree_attr', ['x86_64', 'aarch64', 'i386']],
  [468, 'file_getattr', ['x86_64', 'aarch64', 'i386']],
  [469, 'file_setattr', ['x86_64', 'aarch64', 'i386']],
];

/** The macros arm64's <asm/unistd.h> defines before it includes <asm-generic/unistd.h>. */
const AARCH64_DEFINES = {
  __BITS_PER_LONG: '64',
  __ARCH_WANT_RENAMEAT: '1',
  __ARCH_WANT_NEW_STAT: '1',
  __ARCH_WANT_SET_GET_RLIMIT: '1',
  __ARCH_WANT_TIME32_SYSCALLS: '1',
  __ARCH_WANT_MEMFD_SECRET: '1',
  __ARCH_WANT_SYS_CLONE3: '1',
};

/** Evaluates a preprocessor condition: defined(), integer macros, ! && || == != < > <= >= and parens. */
function evalCondition(expr, macros) {
  let e = expr.replace(/\/\*.*?\*\//g, '').trim();
  e = e.replace(/defined\s*\(\s*(\w+)\s*\)|defined\s+(\w+)/g, (_, a, b) => (macros.has(a ?? b) ? '1' : '0'));
  e = e.replace(/[A-Za-z_]\w*/g, (id) => {
    const v = resolve(id, macros);
    return v === undefined ? '0' : String(v);
  });
  if (!/^[\d\s()!&|=<>]*$/.test(e)) throw new Error(`cannot evaluate #if ${expr}`);
  // The expression is now digits and C operators only, which JS evaluates the same way.
  return Boolean(Function(`"use strict"; return (${e});`)());
}

/** Resolves a macro to an integer following aliases (__NR_fcntl -> __NR3264_fcntl -> 25). */
function resolve(name, macros, depth = 0) {
  if (depth > 8) throw new Error(`macro loop at ${name}`);
  const v = macros.get(name);
  if (v === undefined) return undefined;
  const t = v.replace(/\/\*.*?\*\//g, '').trim();
  if (/^\(?\s*(0x[0-9a-f]+|\d+)\s*\)?$/i.test(t)) return Number(t.replace(/[()\s]/g, ''));
  if (/^\w+$/.test(t)) return resolve(t, macros, depth + 1);
  const sum = /^\(?\s*(\w+)\s*\+\s*(\d+)\s*\)?$/.exec(t);
  if (sum) {
    const base = resolve(sum[1], macros, depth + 1);
    return base === undefined ? undefined : base + Number(sum[2]);
  }
  return undefined;
}

/** A small C preprocessor for #define/#undef/#if/#ifdef/#ifndef/#elif/#else/#endif. */
function preprocess(text, predefined) {
  const macros = new Map(Object.entries(predefined));
  const order = [];
  const stack = []; // { active, taken }
  const active = () => stack.every((s) => s.active);
  const lines = text.replace(/\\\n/g, ' ').split('\n');
  for (const raw of lines) {
    const line = raw.trim();
    let m;
    if ((m = /^#\s*ifdef\s+(\w+)/.exec(line))) {
      const c = macros.has(m[1]);
      stack.push({ active: c, taken: c });
    } else if ((m = /^#\s*ifndef\s+(\w+)/.exec(line))) {
      const c = !macros.has(m[1]);
      stack.push({ active: c, taken: c });
    } else if ((m = /^#\s*if\s+(.*)$/.exec(line))) {
      const c = active() ? evalCondition(m[1], macros) : false;
      stack.push({ active: c, taken: c });
    } else if ((m = /^#\s*elif\s+(.*)$/.exec(line))) {
      const top = stack[stack.length - 1];
      if (!top) throw new Error('#elif without #if');
      const c = !top.taken && evalCondition(m[1], macros);
      top.active = c;
      top.taken ||= c;
    } else if (/^#\s*else\b/.test(line)) {
      const top = stack[stack.length - 1];
      if (!top) throw new Error('#else without #if');
      top.active = !top.taken;
      top.taken = true;
    } else if (/^#\s*endif\b/.test(line)) {
      if (!stack.pop()) throw new Error('#endif without #if');
    } else if (!active()) {
    } else if ((m = /^#\s*define\s+(\w+)(?:\s+(.*))?$/.exec(line))) {
      macros.set(m[1], (m[2] ?? '').trim());
      order.push(m[1]);
    } else if ((m = /^#\s*undef\s+(\w+)/.exec(line))) {
      macros.delete(m[1]);
    }
  }
  if (stack.length) throw new Error('unterminated #if');
  return { macros, order };
}

function syscallTable(file, predefined) {
  const { macros, order } = preprocess(readFileSync(file, 'utf8'), predefined);
  const skip = new Set(['__NR_syscalls', '__NR_arch_specific_syscall']);
  const table = new Map(); // name -> nr
  for (const name of order) {
    if (!name.startsWith('__NR_') || skip.has(name) || !macros.has(name)) continue;
    const nr = resolve(name, macros);
    if (nr === undefined) throw new Error(`${file}: cannot resolve ${name} = ${macros.get(name)}`);
    table.set(name.slice(5), nr);
  }
  return table;
}

function addNewer(table, arch) {
  const byNr = new Map([...table].map(([n, nr]) => [nr, n]));
  for (const [nr, name, arches] of NEWER) {
    if (!arches.includes(arch)) continue;
    const have = table.get(name);
    if (have !== undefined && have !== nr) throw new Error(`${arch}: header says ${name} = ${have}, list says ${nr}`);
    const other = byNr.get(nr);
    if (other !== undefined && other !== name)
      throw new Error(`${arch}: header has ${other} at ${nr}, list says ${name}`);
    table.set(name, nr);
  }
}

function emitTable(arch, table, source, constName, auditArch) {
  const entries = [...table].sort((a, b) => a[1] - b[1] || (a[0] < b[0] ? -1 : 1));
  const body = entries.map(([n, nr]) => `  ['${n}', ${nr}],`).join('\n');
  return `// Generated by packages/executor/scripts/gen-syscalls.mjs from ${source}
// (plus the syscalls 451-469 listed in the script). Do not edit; re-run the script.

/** ${arch} syscall names and numbers, sorted by number. seccomp reports them with arch ${auditArch}. */
export const ${constName}: ReadonlyArray<readonly [name: string, nr: number]> = [
${body}
];
`;
}

function errnoTable() {
  const text =
    readFileSync(join(includeDir, 'asm-generic/errno-base.h'), 'utf8') +
    '\n' +
    readFileSync(join(includeDir, 'asm-generic/errno.h'), 'utf8').replace(/#include.*\n/g, '');
  const { macros, order } = preprocess(text, {});
  const rows = [];
  for (const name of order) {
    if (!/^E[A-Z0-9]+$/.test(name)) continue;
    const v = resolve(name, macros);
    if (v !== undefined) rows.push([name, v]);
  }
  const body = rows.map(([n, v]) => `  ['${n}', ${v}],`).join('\n');
  return `// Generated by packages/executor/scripts/gen-syscalls.mjs from <asm-generic/errno-base.h> and
// <asm-generic/errno.h> (x86_64 and aarch64 share these values). Do not edit; re-run the script.

/** Linux errno names and values; aliases (EWOULDBLOCK, EDEADLOCK) follow their target. */
export const ERRNO_TABLE: ReadonlyArray<readonly [name: string, value: number]> = [
${body}
];
`;
}

const x64 = syscallTable(join(includeDir, 'x86_64-linux-gnu/asm/unistd_64.h'), {});
addNewer(x64, 'x86_64');
const a64 = syscallTable(join(includeDir, 'asm-generic/unistd.h'), AARCH64_DEFINES);
addNewer(a64, 'aarch64');
const i386 = syscallTable(join(includeDir, 'x86_64-linux-gnu/asm/unistd_32.h'), {});
addNewer(i386, 'i386');

// Sanity checks on facts everybody knows, so a broken parse cannot slip through.
const expect = [
  [x64, 'read', 0],
  [x64, 'execveat', 322],
  [x64, 'clone3', 435],
  [x64, 'futex_waitv', 449],
  [a64, 'io_setup', 0],
  [a64, 'fcntl', 25],
  [a64, 'newfstatat', 79],
  [a64, 'fstat', 80],
  [a64, 'lseek', 62],
  [a64, 'mmap', 222],
  [a64, 'execveat', 281],
  [a64, 'clone3', 435],
  [a64, 'renameat', 38],
  [a64, 'getrlimit', 163],
  [i386, 'exit', 1],
  [i386, 'socketcall', 102],
  [i386, 'execveat', 358],
];
for (const [t, n, nr] of expect) if (t.get(n) !== nr) throw new Error(`sanity: ${n} should be ${nr}, got ${t.get(n)}`);
for (const n of ['open', 'stat', 'fcntl64', 'mmap2', 'sync_file_range2', 'arch_specific_syscall', 'syscalls'])
  if (a64.has(n)) throw new Error(`sanity: aarch64 has no ${n}`);

const outputs = [
  ['syscalls-x86_64.ts', emitTable('x86_64', x64, '<asm/unistd_64.h>', 'SYSCALLS_X86_64', 'AUDIT_ARCH_X86_64')],
  [
    'syscalls-aarch64.ts',
    emitTable('aarch64', a64, '<asm-generic/unistd.h>', 'SYSCALLS_AARCH64', 'AUDIT_ARCH_AARCH64'),
  ],
  ['syscalls-i386.ts', emitTable('i386', i386, '<asm/unistd_32.h>', 'SYSCALLS_I386', 'AUDIT_ARCH_I386')],
  ['errnos.ts', errnoTable()],
];
let stale = 0;
for (const [file, text] of outputs) {
  const path = join(outDir, file);
  if (check) {
    if (!existsSync(path) || readFileSync(path, 'utf8') !== text) {
      console.error(`${file} is out of date`);
      stale++;
    }
  } else {
    writeFileSync(path, text);
    console.log(`wrote ${path}`);
  }
}
if (stale) process.exit(1);
