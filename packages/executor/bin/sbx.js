#!/usr/bin/env node
// The sbx CLI. One bundled module when the build made it (fast start), else the plain modules.
import { existsSync } from 'node:fs';

const bundle = new URL('../dist/cli.bundle.mjs', import.meta.url);
const entry = existsSync(bundle) ? bundle.href : new URL('../dist/cli/main.js', import.meta.url).href;
import(entry).then((m) => m.main(process.argv.slice(2)));
