// The sandboxed-module examples (examples/sandboxed-modules) on their real npm packages: js-yaml 3
// (pure JS, a parser whose input can carry code), sharp (libvips, a native addon with prebuilt
// binaries) and libz through koffi (a C library wrapped in a module). Each does its job on
// ordinary input inside the sandbox, and a malicious input can neither read a file nor open a
// socket there.
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { deflateSync } from 'node:zlib';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ModuleError, type SandboxedModule, sandboxedModule } from '@sbx/modules';
import { repoRoot } from './helpers.js';
import { libzView, sharpAddon } from '../examples/sandboxed-modules/policies.mjs';

const from = join(repoRoot, 'examples', 'sandboxed-modules');

async function failure(p: Promise<unknown>): Promise<ModuleError> {
  const err = await p.then(
    (v) => {
      throw new Error(`expected a ModuleError, got ${JSON.stringify(v)?.slice(0, 200)}`);
    },
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ModuleError);
  return err as ModuleError;
}

/** A TCP listener on loopback that counts the connections it gets. */
async function listener(): Promise<{ server: Server; port: number; connections: () => number }> {
  let n = 0;
  const server = createServer((s) => {
    n++;
    s.destroy();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as { port: number }).port, connections: () => n };
}

/** Front matter whose title is a !!js/function: js-yaml 3's load() builds it, the template literal calls it. */
const payload = (body: string) => `---\ntitle:\n  toString: !!js/function >\n    function () { ${body} }\n---\ntext\n`;
const readsPasswd = payload("return process.getBuiltinModule('fs').readFileSync('/etc/passwd', 'utf8')");

describe('example: js-yaml 3 front matter (pure JS)', () => {
  let m: SandboxedModule<typeof import('../examples/sandboxed-modules/front-matter.mjs')>;
  beforeAll(async () => {
    m = await sandboxedModule('./front-matter.mjs', { from, timeoutMs: 20_000 });
  });
  afterAll(async () => {
    await m?.close();
  });

  it('summarizes an ordinary document', async () => {
    expect(await m.api.summarize('---\ntitle: Release notes\ntags: [a, b]\n---\nthree words here')).toEqual({
      title: 'Release notes',
      tags: ['a', 'b'],
      words: 3,
    });
  });

  it('a document that reads /etc/passwd does so in process, and is stopped in the sandbox', async () => {
    const inProcess = await import('../examples/sandboxed-modules/front-matter.mjs');
    expect(inProcess.summarize(readsPasswd).title).toMatch(/^root:/); // the hole is real
    const e = await failure(m.api.summarize(readsPasswd));
    expect(e.code).toBe('VIOLATION');
    expect(e.violation?.syscall).toBe('openat');
    expect(await m.api.summarize('---\ntitle: next\n---\n')).toMatchObject({ title: 'next' });
  });

  it('a document that connects to a port on loopback is stopped, and nothing connects', async () => {
    const l = await listener();
    try {
      // synchronous, so that the connect is made before the title is returned (net.connect would wait a tick)
      const dials = payload(
        `const { TCP, TCPConnectWrap, constants } = process.binding('tcp_wrap'); new TCP(constants.SOCKET).connect(new TCPConnectWrap(), '127.0.0.1', ${l.port}); return 'dialled'`,
      );
      const e = await failure(m.api.summarize(dials));
      expect(e.code).toBe('VIOLATION');
      expect(e.violation?.syscall).toBe('socket');
      expect(l.connections()).toBe(0);
    } finally {
      l.server.close();
    }
  });
});

describe('example: sharp thumbnails (native addon, libvips)', () => {
  let m: SandboxedModule<typeof import('../examples/sandboxed-modules/thumbnail.mjs')>;
  beforeAll(async () => {
    m = await sandboxedModule('./thumbnail.mjs', { from, addons: [sharpAddon()], timeoutMs: 30_000 });
  });
  afterAll(async () => {
    await m?.close();
  });

  it('decodes PNG and JPEG and encodes WebP inside the sandbox', async () => {
    const image = sharp({ create: { width: 640, height: 360, channels: 3, background: '#2a6' } });
    for (const [format, input] of [
      ['png', await image.clone().png().toBuffer()],
      ['jpeg', await image.clone().jpeg().toBuffer()],
    ] as const) {
      const r = await m.api.thumbnail(input, 64);
      expect(r).toMatchObject({ format, width: 640, height: 360 });
      const meta = await sharp(r.webp).metadata();
      expect(meta).toMatchObject({ format: 'webp', width: 64, height: 36 });
    }
  });

  it('bytes that are no image, or a truncated one, come back as the decoder error', async () => {
    expect((await failure(m.api.thumbnail(Buffer.from('GIF89a truncated')))).code).toBe('THROWN');
    const png = await sharp({ create: { width: 64, height: 64, channels: 3, background: '#000' } })
      .png()
      .toBuffer();
    expect((await failure(m.api.thumbnail(png.subarray(0, 60)))).code).toBe('THROWN');
  });

  it('an SVG that points at /etc/passwd and a server cannot make libvips read a file or connect', async () => {
    const l = await listener();
    try {
      const svg = Buffer.from(
        `<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="64" height="64">` +
          `<image xlink:href="file:///etc/passwd" width="32" height="32"/>` +
          `<image href="http://127.0.0.1:${l.port}/x.png" width="32" height="32"/></svg>`,
      );
      // librsvg opens files of its own the first time it renders (locale data, the CPU count):
      // the policy allows no open at all, so the call ends at the first one.
      const e = await failure(m.api.thumbnail(svg));
      expect(e.code).toBe('VIOLATION');
      expect(e.violation?.syscall).toBe('openat');
      expect(l.connections()).toBe(0);
    } finally {
      l.server.close();
    }
  });
});

describe('example: libz through koffi (a C library wrapped in a module)', () => {
  it('inflates in the sandbox; corrupt data is libz error; the module lives on', async () => {
    const m = await sandboxedModule<typeof import('../examples/sandboxed-modules/zlib-c.mjs')>('./zlib-c.mjs', {
      from,
      policy: libzView,
      timeoutMs: 20_000,
    });
    try {
      const text = Buffer.from('sandboxed C '.repeat(500));
      expect(Buffer.compare(await m.api.inflate(deflateSync(text)), text)).toBe(0);
      const e = await failure(m.api.inflate(Buffer.from('x\u009c not zlib at all')));
      expect(e.code).toBe('THROWN');
      expect(e.remoteCode).toBe('Z_DATA_ERROR');
      expect(await m.api.version()).toMatch(/^1\./);
    } finally {
      await m.close();
    }
  });
});
