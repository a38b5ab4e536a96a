#!/usr/bin/env node
// The sbx CLI. CommonJS (bin/package.json says so): Node then starts it without its ESM loader.
'use strict';
require('./cli-loader.js')
  .loadCli()
  .then((cli) => cli.main(process.argv.slice(2)));
