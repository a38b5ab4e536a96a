#!/usr/bin/env node
// The sbx CLI. The bundled modules when the build made them (fast start), else the plain ones.
// node:fs through require(): an ESM import of it builds its facade, which loads the streams.
import module, { createRequire } from 'node:module';

const { existsSync } = createRequire(import.meta.url)('node:fs');
// Node 22.1+ keeps compiled code on disk for the next start; older Nodes lack it (no-op).
module.enableCompileCache?.();

const bundle = new URL('../dist/cli-bundle.mjs', import.meta.url);
const entry = existsSync(bundle) ? bundle.href : new URL('../dist/cli/main.js', import.meta.url).href;
import(entry).then((m) => m.main(process.argv.slice(2)));
