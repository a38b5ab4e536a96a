#!/usr/bin/env node
// format-c.mjs: clang-format over every tracked C/C++ file (style in .clang-format).
//   node scripts/format-c.mjs --check   fails, listing the files, when any file is not formatted
//   node scripts/format-c.mjs --write   formats them in place
import { execFileSync, spawnSync } from 'node:child_process';

const mode = process.argv[2] ?? '--check';
if (mode !== '--check' && mode !== '--write') {
  console.error(`format-c: unknown mode ${mode} (use --check or --write)`);
  process.exit(2);
}
const files = execFileSync('git', ['ls-files', '-z', '--', '*.c', '*.h', '*.cc'], { encoding: 'utf8' })
  .split('\0')
  .filter((f) => f !== '' && !f.includes('/fuzz/corpus/'));
const args = mode === '--write' ? ['-i', ...files] : ['--dry-run', '-Werror', '--ferror-limit=1', ...files];
const run = spawnSync('clang-format', args, { encoding: 'utf8' });
if (run.error) {
  console.error(`format-c: cannot run clang-format (${run.error.message}); install it (apt-get install clang-format)`);
  process.exit(2);
}
if (run.status !== 0) {
  const bad = [...new Set([...run.stderr.matchAll(/^(\S+?):\d+:\d+: error/gm)].map((m) => m[1]))];
  console.error(`format-c: ${bad.length} file(s) need clang-format; run: node scripts/format-c.mjs --write`);
  for (const f of bad) console.error(`  ${f}`);
  process.exit(1);
}
console.log(`format-c: ${files.length} C/C++ files ${mode === '--write' ? 'formatted' : 'already formatted'}`);
