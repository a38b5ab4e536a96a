// msgpack-extract.ts: msgpackr's optional native string extractor (msgpackr-extract), loaded
// straight from its prebuilt N-API file. msgpackr-extract finds that file itself at load time
// (node-gyp-build-optional-packages: detect-libc, child_process, url, a directory walk), which is
// most of msgpackr's load and lands inside a cold sandboxMeHere(). The file is the one that lookup
// settles on for this platform; the result is registered under msgpackr-extract's own module
// entry, where msgpackr's require() finds it. Anything unexpected leaves msgpackr's own lookup in
// charge, so the extractor is still optional, as msgpackr treats it.
import Module, { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { native } from './native.js';

/** `msgpackrRequire`: a require() rooted at msgpackr's own entry file (its dependencies resolve there). */
export function preloadMsgpackExtract(msgpackrRequire: NodeJS.Require): void {
  const env = process.env;
  // msgpackr's and node-gyp-build's own switches keep their meaning
  if (env.MSGPACKR_NATIVE_ACCELERATION_DISABLED?.toLowerCase() === 'true') return;
  if (env.MSGPACKR_EXTRACT_PREBUILD || env.PREBUILDS_ONLY) return;
  try {
    const entry = msgpackrRequire.resolve('msgpackr-extract');
    if (msgpackrRequire.cache[entry]) return;
    const extractRequire = createRequire(entry);
    const platformPackage = `@msgpackr-extract/msgpackr-extract-${process.platform}-${process.arch}`;
    const dir = dirname(extractRequire.resolve(`${platformPackage}/package.json`));
    const binding = extractRequire(join(dir, `node.napi.${native().libc}.node`)) as { extractStrings?: unknown };
    if (typeof binding?.extractStrings !== 'function') return;
    const m = new Module(entry);
    m.filename = entry;
    m.exports = binding;
    m.loaded = true;
    msgpackrRequire.cache[entry] = m;
  } catch {
    // no prebuilt file for this platform, or another layout: msgpackr looks for it as usual
  }
}
