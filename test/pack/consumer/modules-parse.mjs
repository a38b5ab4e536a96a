// The module test/pack/consumer/modules-runner.mjs calls through @sbx/modules: a parser that
// trusts its input, and one that tries to read a file it was not given.
import { readFileSync } from 'node:fs';

export const parse = (text) => Object.fromEntries(text.split(';').map((kv) => kv.split('=')));
export const readSecret = () => readFileSync('/etc/passwd', 'utf8');
