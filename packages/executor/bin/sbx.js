#!/usr/bin/env node
// The sbx CLI. The bundled modules when the build made them (fast start), else the plain ones.
import { existsSync } from 'node:fs';

const bundle = new URL('../dist/cli-bundle.mjs', import.meta.url);
const entry = existsSync(bundle) ? bundle.href : new URL('../dist/cli/main.js', import.meta.url).href;
import(entry).then((m) => m.main(process.argv.slice(2)));
