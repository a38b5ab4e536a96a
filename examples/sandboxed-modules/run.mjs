#!/usr/bin/env node
// Runs the three example modules through sandboxedModule() (after pnpm build):
//   node examples/sandboxed-modules/run.mjs
// Each gets an ordinary input and a malicious one; the malicious ones come back as ModuleErrors.
import { deflateSync } from 'node:zlib';
import sharp from 'sharp';
import { sandboxedModule } from '@sbx/modules';
import { libzView, sharpAddon } from './policies.mjs';

const from = import.meta.dirname;
const show = async (what, p) => {
  const t0 = performance.now();
  try {
    const v = await p;
    console.log(`${what}: ${JSON.stringify(v, (_k, x) => (x?.type === 'Buffer' ? `<${x.data.length} bytes>` : x))}`);
  } catch (e) {
    console.log(`${what}: ${e.code}: ${e.message}`);
  }
  console.log(`  (${(performance.now() - t0).toFixed(1)} ms)`);
};

// A pure-JS parser that turns input into code: js-yaml 3's load().
const yaml = await sandboxedModule('./front-matter.mjs', { from });
await show('front matter', yaml.api.summarize('---\ntitle: Hello\ntags: [a, b]\n---\nsome words'));
const evil =
  "---\ntitle:\n  toString: !!js/function >\n    function () { return process.getBuiltinModule('fs').readFileSync('/etc/passwd', 'utf8') }\n---\n";
await show('front matter with a !!js/function that reads /etc/passwd', yaml.api.summarize(evil));
await yaml.close();

// A native image library: sharp (libvips).
const images = await sandboxedModule('./thumbnail.mjs', { from, addons: [sharpAddon()] });
const png = await sharp({ create: { width: 800, height: 600, channels: 3, background: '#c33' } })
  .png()
  .toBuffer();
await show('thumbnail of an 800x600 PNG', images.api.thumbnail(png));
await show('thumbnail of bytes that are no image', images.api.thumbnail(Buffer.from('GIF89a...')));
await images.close();

// A C library wrapped in a module: libz through koffi.
const zlib = await sandboxedModule('./zlib-c.mjs', { from, policy: libzView });
await show(
  'inflate',
  zlib.api.inflate(deflateSync(Buffer.from('hello '.repeat(100)))).then((b) => b.length),
);
await show('inflate of corrupt data', zlib.api.inflate(Buffer.from('x\x9c corrupt')));
await zlib.close();
