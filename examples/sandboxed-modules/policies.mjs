// policies.mjs: what each example module needs beyond sandboxedModule()'s default view, shared
// by run.mjs and test/modules-examples.test.ts. Only views: no example allows a single syscall
// more than the default policy.
import { existsSync, realpathSync } from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

/** sharp's native addon: its shared libraries (libvips ships next to it; libresolv does not). */
export function sharpAddon() {
  return createRequire(require.resolve('sharp')).resolve(`@img/sharp-${process.platform}-${process.arch}/sharp.node`);
}

/** The system's libz, as the dynamic loader finds it by name (through /etc/ld.so.cache). */
export function libzView(b) {
  const libz = [
    '/usr/lib/x86_64-linux-gnu/libz.so.1',
    '/usr/lib/aarch64-linux-gnu/libz.so.1',
    '/usr/lib64/libz.so.1',
  ].find((p) => existsSync(p));
  if (!libz) throw new Error('zlib-c example: no libz.so.1 on this host');
  b.addFile('/etc/ld.so.cache').addFile(libz).addFile(realpathSync(libz));
}
