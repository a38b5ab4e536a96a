#!/usr/bin/env node
// The oldest systems the prebuilt native parts must run on: glibc 2.28 (and the libstdc++ of
// that era, GCC 8's). Reads the symbol versions every given ELF file needs (objdump -T) and fails
// naming each symbol above the bound. A statically linked executable needs none.
// Usage: node test/check-glibc.mjs [FILE|DIR ...]   (default: the shipped parts of native/build)
// CI runs it on the repository build and on the prebuilds of the packed tarball (test/pack/run.mjs).
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';

/** The highest version allowed per prefix. */
export const MAX = { GLIBC: '2.28', GLIBCXX: '3.4.25', CXXABI: '1.3.11' };

const cmp = (a, b) => {
  const x = a.split('.').map(Number);
  const y = b.split('.').map(Number);
  for (let i = 0; i < Math.max(x.length, y.length); i++)
    if ((x[i] ?? 0) !== (y[i] ?? 0)) return (x[i] ?? 0) - (y[i] ?? 0);
  return 0;
};

function isElf(path) {
  try {
    const b = readFileSync(path).subarray(0, 4);
    return b.length === 4 && b[0] === 0x7f && b.toString('latin1', 1, 4) === 'ELF';
  } catch {
    return false;
  }
}

function elfFiles(path) {
  const st = statSync(path);
  if (st.isFile()) return isElf(path) ? [path] : [];
  return readdirSync(path).flatMap((n) => elfFiles(join(path, n)));
}

/** { file, highest: {GLIBC: '2.17', ...}, offending: ['fstat@GLIBC_2.33', ...], dynamic } */
export function checkFile(file) {
  const r = spawnSync('objdump', ['-T', file], { encoding: 'utf8' });
  if (r.error) throw new Error(`objdump: ${r.error.message} (install binutils)`);
  if (r.status !== 0 && /not a dynamic object/.test(r.stderr))
    return { file, highest: {}, offending: [], dynamic: false };
  if (r.status !== 0) throw new Error(`objdump -T ${file}: ${r.stderr.trim()}`);
  const highest = {};
  const offending = [];
  for (const line of r.stdout.split('\n')) {
    const m = /\(?(GLIBCXX|CXXABI|GLIBC)_(\d+(?:\.\d+)*)\)?\s+(\S+)\s*$/.exec(line);
    if (!m) continue;
    const [, prefix, version, symbol] = m;
    if (!highest[prefix] || cmp(version, highest[prefix]) > 0) highest[prefix] = version;
    if (cmp(version, MAX[prefix]) > 0) offending.push(`${symbol}@${prefix}_${version}`);
  }
  return { file, highest, offending, dynamic: true };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const repo = resolve(import.meta.dirname, '..');
  const args = process.argv.slice(2);
  const targets = args.length
    ? args
    : [join(repo, 'native/build/Release/sbx_native.node'), join(repo, 'native/build/forkserver/sbx-forkserver')];
  const files = targets.flatMap((t) => elfFiles(t));
  if (files.length === 0) {
    console.error(`check-glibc: no ELF files in ${targets.join(', ')}`);
    process.exit(1);
  }
  let bad = 0;
  for (const f of files) {
    const r = checkFile(f);
    const summary = r.dynamic
      ? Object.entries(r.highest)
          .map(([k, v]) => `${k}_${v}`)
          .join(', ') || 'no versioned symbols'
      : 'statically linked';
    if (r.offending.length) {
      bad++;
      console.error(
        `check-glibc: FAIL ${f} (${summary}) needs more than glibc ${MAX.GLIBC} / GLIBCXX_${MAX.GLIBCXX}: ${r.offending.join(', ')}`,
      );
    } else console.log(`check-glibc: ok   ${f} (${summary})`);
  }
  process.exit(bad ? 1 : 0);
}
