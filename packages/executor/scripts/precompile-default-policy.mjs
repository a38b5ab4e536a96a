#!/usr/bin/env node
// Writes dist/cli/default-policy.precompiled.json: `sbx run`'s allowCommandLine() rules and their
// seccomp programs, made by this package's own builder and compiler (src/cli/precompiled-policy.ts
// says why). Run after tsc, by bundle-cli.mjs.
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const dist = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'cli');
const { makePrecompiledDefault, PRECOMPILED_FILE } = await import(join(dist, 'precompiled-policy.js'));
writeFileSync(join(dist, PRECOMPILED_FILE), `${JSON.stringify(makePrecompiledDefault())}\n`);
