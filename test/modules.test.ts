// Sandboxed modules (@sbx/modules) end to end: a real warm Node forkserver imports a module once,
// every call runs in a forked child under the module's policy. What a call can return (msgpack
// values, shared-memory buffers, errors with the child's stack), every way a child can end
// before it answers (timeout, heap exhaustion, a segfault or abort in native code, a violation,
// an exit, a forged message) as a typed error while the module and other calls live on, and
// that no state carries from one call to the next in 'call' mode.
import { closeSync, openSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SharedBuffer } from '@sbx/client';
import { PassFd, type SandboxedModule, sandboxedModule } from '@sbx/modules';
import { openFdCount, repoRoot } from './helpers.js';
import { moduleFailure as failure } from './module-failure.js';

const fixtures = join(repoRoot, 'test', 'fixtures', 'modules');
const sample = join(fixtures, 'sample.mjs');
type Sample = typeof import('./fixtures/modules/sample.mjs');

describe("sandboxedModule, 'call' mode", () => {
  let m: SandboxedModule<Sample>;
  beforeAll(async () => {
    m = await sandboxedModule<Sample>(sample, { timeoutMs: 20_000, limits: { heapMiB: 48 } });
  });
  afterAll(async () => {
    await m?.close();
  });

  it('lists the exports and calls them by name and through the typed api', async () => {
    expect(m.exports).toEqual(expect.arrayContaining(['add', 'echo', 'later', 'bump', 'fail']));
    expect(await m.call('add', 2, 3)).toBe(5);
    expect(await m.api.add(40, 2)).toBe(42);
    const value = { s: 'text', n: -1.5, big: 2n ** 60n, list: [1, null, true], nested: { a: { b: 'c' } } };
    expect(await m.api.echo(value)).toEqual(value);
    const r = await m.api.later('async');
    expect(r.v).toBe('async');
  });

  it('carries no state from one call to the next: each call is a fresh child', async () => {
    const counts = [await m.api.bump(), await m.api.bump(), await m.api.bump()];
    expect(counts).toEqual([1, 1, 1]);
    const pids = new Set([(await m.api.later(0)).pid, (await m.api.later(0)).pid, (await m.api.later(0)).pid]);
    expect(pids.size).toBe(3);
  });

  it("runs none of the module's code ahead of a call (the warm-up of spares and forkserver uses its own functions)", async () => {
    const probe = await sandboxedModule(join(fixtures, 'warm-probe.mjs'), { spares: 2, trace: true });
    try {
      expect(await probe.call('ranBefore')).toEqual([]);
      expect(await probe.call('warm', 1, 'x')).toEqual([1, 'x']);
      expect(await probe.call('ranBefore')).toEqual([]); // and the call before left nothing here
      const t = probe.lastTrace;
      expect(t).not.toBeNull();
      expect(t!.answeredUs).toBeGreaterThanOrEqual(t!.forkedUs);
      expect(t!.fork?.stages.map((s) => s.stage)).toContain('first Comms reply');
    } finally {
      await probe.close();
    }
  });

  it('leaves no fd behind once its children are gone', async () => {
    await m.api.add(0, 0);
    SharedBuffer.releaseSpares();
    const before = openFdCount();
    for (let i = 0; i < 8; i++) await m.api.sum(Buffer.alloc(100_000, 1));
    await failure(m.call('readSecret', '/etc/passwd'));
    // SharedBuffer keeps a spare memfd of a size it just sent (buffer-pool.ts): held on purpose, not leaked
    SharedBuffer.releaseSpares();
    let now = openFdCount();
    for (let i = 0; i < 100 && now > before; i++) {
      await new Promise((r) => setTimeout(r, 50));
      now = openFdCount();
    }
    expect(now).toBeLessThanOrEqual(before);
  });

  it('sends large byte arrays as shared memory both ways, keeping Buffer and Uint8Array apart', async () => {
    const big = Buffer.alloc(1 << 20, 3);
    expect(await m.api.sum(big)).toEqual({ s: (3 * (1 << 20)) % 65521, length: 1 << 20, isBuffer: true });
    expect(await m.api.kind(new Uint8Array(200_000))).toBe('Uint8Array');
    expect(await m.api.kind(Buffer.alloc(10))).toBe('Buffer');
    const out = (await m.api.fill(3 << 20, 7)) as Buffer;
    expect(Buffer.isBuffer(out)).toBe(true);
    expect(out.length).toBe(3 << 20);
    expect(out[0]).toBe(7);
    expect(out[out.length - 1]).toBe(7);
    const u8 = await m.api.bytes(100_000);
    expect(u8).toBeInstanceOf(Uint8Array);
    expect(Buffer.isBuffer(u8)).toBe(false);
    expect(u8[99_999]).toBe(9);
    // a SharedBuffer argument goes as it is (no copy)
    const shared = SharedBuffer.create(128 << 10);
    shared.bytes.fill(1);
    try {
      expect((await m.call('sum', shared)) as { length: number }).toMatchObject({ length: 128 << 10, isBuffer: true });
    } finally {
      shared.close();
    }
  });

  it('passes an fd the child can read although it may open no file', async () => {
    const path = join(tmpdir(), `sbx-modules-fd-${process.pid}`);
    writeFileSync(path, 'contents only the fd gives');
    const fd = openSync(path, 'r');
    try {
      expect(await m.call('readFd', new PassFd(fd))).toBe('contents only the fd gives');
      const e = await failure(m.call('readSecret', path));
      expect(e.code).toBe('VIOLATION');
    } finally {
      closeSync(fd);
      unlinkSync(path);
    }
  });

  it("returns a thrown error with the child's name, message, code and stack", async () => {
    const e = await failure(m.call('fail', 'no such record'));
    expect(e.code).toBe('THROWN');
    expect(e.remoteName).toBe('RangeError');
    expect(e.remoteCode).toBe('E_SAMPLE');
    expect(e.message).toContain('no such record');
    expect(e.remoteStack).toMatch(/at fail \(.*sample\.mjs/);
    expect(e.stack).toContain('--- in the sandboxed child ---');
    expect((await failure(m.call('nothing-like-this'))).code).toBe('NO_SUCH_FUNCTION');
  });

  it('kills a call that runs past its timeout, while the module and a concurrent call live on', async () => {
    const quick = await sandboxedModule<Sample>(sample, { timeoutMs: 1500, spares: 1 });
    try {
      const spinning = failure(quick.call('spin'));
      expect(await quick.api.add(1, 1)).toBe(2);
      const e = await spinning;
      expect(e.code).toBe('TIMEOUT');
      expect(e.fn).toBe('spin');
      expect(await quick.api.add(2, 2)).toBe(4);
    } finally {
      await quick.close();
    }
  });

  it('reports heap exhaustion as OOM (V8 heap limit from limits.heapMiB)', async () => {
    const e = await failure(m.call('exhaust'));
    expect(e.code).toBe('OOM');
    expect(e.stderr).toMatch(/heap/i);
    expect(await m.api.add(1, 2)).toBe(3);
  });

  it('stops a file read and a socket as violations naming the syscall', async () => {
    const read = await failure(m.call('readSecret', '/etc/passwd'));
    expect(read.code).toBe('VIOLATION');
    expect(read.violation?.syscall).toBe('openat');
    const dial = await failure(m.call('dial', 9));
    expect(dial.code).toBe('VIOLATION');
    expect(dial.violation?.syscall).toBe('socket');
  });

  it('reports an exit before the answer, and a child that forges a message is killed', async () => {
    const exit = await failure(m.call('exit', 7));
    expect(exit.code).toBe('EXITED');
    expect(exit.message).toContain('code 7');
    const forged = await failure(m.call('forge'));
    expect(forged.code).toBe('PROTOCOL');
    expect(await m.api.add(5, 5)).toBe(10);
  });

  it('refuses arguments msgpack cannot carry with BAD_ARGUMENT, naming the call', async () => {
    const e = await failure(m.call('echo', Symbol('no')));
    expect(e.code).toBe('BAD_ARGUMENT');
    expect(e.message).toContain('symbol');
    expect(e.fn).toBe('echo');
  });
});

describe('sandboxedModule, native code', () => {
  it('a segfault and an abort in a native addon are CRASHED with their signal; the module lives on', async () => {
    const m = await sandboxedModule(join(fixtures, 'crash.mjs'), { timeoutMs: 20_000, spares: 1 });
    try {
      const segv = await failure(m.call('segfault'));
      expect(segv.code).toBe('CRASHED');
      expect(segv.signal).toBe('SIGSEGV');
      const abort = await failure(m.call('abortNow'));
      expect(abort.code).toBe('CRASHED');
      expect(abort.signal).toBe('SIGABRT');
      expect(await m.call('ok')).toBe('alive');
      // code injected into native code (a decoder exploit) calls libc directly: stopped as well
      const read = await failure(m.call('nativeRead', '/etc/passwd'));
      expect(read.code).toBe('VIOLATION');
      expect(read.violation?.syscall).toMatch(/^open/);
      const socket = await failure(m.call('nativeSocket'));
      expect(socket.code).toBe('VIOLATION');
      expect(socket.violation?.syscall).toBe('socket');
    } finally {
      await m.close();
    }
  });
});

describe("sandboxedModule, 'session' mode", () => {
  it('keeps one child (and its state) across calls; a child that dies is replaced at the next call', async () => {
    const m = await sandboxedModule<Sample>(sample, { mode: 'session', timeoutMs: 20_000, spares: 1 });
    try {
      expect([await m.api.bump(), await m.api.bump(), await m.api.bump()]).toEqual([1, 2, 3]);
      const pid = (await m.api.later(0)).pid;
      expect((await m.api.later(0)).pid).toBe(pid);
      expect((await failure(m.call('readSecret', '/etc/hostname'))).code).toBe('VIOLATION');
      expect(await m.api.bump()).toBe(1); // a new child: the state of the dead one is gone
      expect((await m.api.later(0)).pid).not.toBe(pid);
      // explicit sessions are separate children
      const a = m.session();
      const b = m.session();
      expect([await a.api.bump(), await a.api.bump(), await b.api.bump()]).toEqual([1, 2, 1]);
      a.close();
      expect((await failure(a.call('bump'))).code).toBe('CLOSED');
      b.close();
    } finally {
      await m.close();
    }
    expect((await failure(m.call('bump'))).code).toBe('CLOSED');
  });
});

describe("sandboxedModule, 'session' mode failures", () => {
  it('a timeout or a forged message ends the session child; the next call gets a new one', async () => {
    const m = await sandboxedModule<Sample>(sample, { mode: 'session', timeoutMs: 1500, spares: 1 });
    try {
      expect([await m.api.bump(), await m.api.bump()]).toEqual([1, 2]);
      expect((await failure(m.call('spin'))).code).toBe('TIMEOUT');
      expect(await m.api.bump()).toBe(1);
      expect((await failure(m.call('forge'))).code).toBe('PROTOCOL');
      expect(await m.api.bump()).toBe(1);
      // an error the function threw keeps the child (and its state)
      expect((await failure(m.call('fail', 'x'))).code).toBe('THROWN');
      expect(await m.api.bump()).toBe(2);
    } finally {
      await m.close();
    }
  });
});

describe('sandboxedModule, bad input', () => {
  it('names what is wrong in options and specifiers, and an import that fails', async () => {
    await expect(sandboxedModule(sample, { mode: 'batch' as never })).rejects.toThrow(
      /mode must be 'call' or 'session'/,
    );
    await expect(sandboxedModule(sample, { spares: -1 })).rejects.toThrow(/spares must be an integer/);
    await expect(sandboxedModule(sample, { timeoutMs: 0 })).rejects.toThrow(/timeoutMs must be a positive number/);
    await expect(sandboxedModule(sample, { limits: { heapMiB: 1 } })).rejects.toThrow(/heapMiB/);
    await expect(sandboxedModule('no-such-package-anywhere')).rejects.toThrow(/cannot resolve it/);
    await expect(sandboxedModule(join(fixtures, 'missing.mjs'))).rejects.toThrow(/does not exist/);
    await (await sandboxedModule(sample, { spares: 0 })).close(); // what sbx opens once per process
    const fds = openFdCount();
    const e = await failure(sandboxedModule(join(fixtures, 'import-fails.mjs')));
    expect(e.code).toBe('IMPORT_FAILED');
    expect(e.message).toContain('this module refuses to load');
    expect(e.remoteName).toBe('SyntaxError');
    const cjs = await failure(sandboxedModule(join(fixtures, 'import-fails.cjs')));
    expect(cjs.code).toBe('IMPORT_FAILED');
    expect(cjs.message).toContain('cjs refuses');
    let now = openFdCount();
    for (let i = 0; i < 100 && now > fds; i++) {
      await new Promise((r) => setTimeout(r, 50));
      now = openFdCount();
    }
    expect(now).toBeLessThanOrEqual(fds);
  });
});
