#!/usr/bin/env node
// The sbx CLI. Kept tiny: each command loads only what it needs.
import('../dist/cli/main.js').then((m) => m.main(process.argv.slice(2)));
