// SharedBuffer.create()'s spares (memfds made ahead, packages/client/src/buffer-pool.ts): a spare is
// fresh (no earlier buffer's data), sealed like any buffer, handed out once, and a sandboxee that
// reserved spares before its filter makes buffers after it without memfd_create.
import { fstatSync, ftruncateSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Comms, Executor, PolicyBuilder, Sandbox, SharedBuffer, SyncComms, startForkServer } from '@sbx/executor';
import { forkNodePolicy, repoRoot, addNodeView, runNodeMeHere } from './helpers.js';

const PAGE = 4096;
const turn = () => new Promise<void>((r) => setImmediate(r));
const inode = (fd: number) => fstatSync(fd).ino;

afterEach(() => SharedBuffer.releaseSpares());

describe('SharedBuffer spares', () => {
  it('a size just made has a spare after the event-loop turn; create() takes it', async () => {
    SharedBuffer.releaseSpares();
    SharedBuffer.create(4 * PAGE).close();
    expect(SharedBuffer.spares(4 * PAGE)).toBe(0);
    await turn();
    expect(SharedBuffer.spares(4 * PAGE)).toBe(1);
    const b = SharedBuffer.create(4 * PAGE);
    expect(SharedBuffer.spares(4 * PAGE)).toBe(0);
    expect(b.size).toBe(4 * PAGE);
    b.close();
  });

  it('never carries an earlier buffer’s data: a spare is a fresh, zero-filled memfd', async () => {
    for (const size of [PAGE, 16 * PAGE, 1 << 20]) {
      const [a, theirs] = Comms.pair();
      const b = new SyncComms(theirs);
      const seen = new Set<number>();
      for (let round = 0; round < 4; round++) {
        await turn(); // from round 1 on, create() takes a spare
        if (round > 0) expect(SharedBuffer.spares(size)).toBe(1);
        const buf = SharedBuffer.create(size);
        expect(seen.has(inode(buf.fd))).toBe(false);
        seen.add(inode(buf.fd));
        expect(buf.bytes.every((x) => x === 0)).toBe(true);
        buf.bytes.fill(0xaa); // the sender's data
        await a.sendBuffer(buf);
        const got = b.recvBuffer({ expectedSize: size });
        got.bytes.fill(0x55); // and the receiver's
        got.close();
        buf.close();
      }
      a.close();
      b.close();
    }
  });

  it('hands each spare out once: reserved spares go to distinct buffers and receivers', async () => {
    const [a, theirs] = Comms.pair();
    const b = new SyncComms(theirs);
    SharedBuffer.reserve(2 * PAGE, 6);
    expect(SharedBuffer.spares(2 * PAGE)).toBe(6);
    const bufs = Array.from({ length: 8 }, () => SharedBuffer.create(2 * PAGE)); // 6 spares, then 2 made now
    expect(SharedBuffer.spares(2 * PAGE)).toBe(0);
    const sent = bufs.map((x) => inode(x.fd));
    expect(new Set(sent).size).toBe(8);
    const received: number[] = [];
    for (const [i, x] of bufs.entries()) {
      x.bytes[0] = i + 1;
      await a.sendBuffer(x);
      const got = b.recvBuffer();
      received.push(inode(got.fd));
      expect(got.bytes[0]).toBe(i + 1);
      got.close();
      x.close();
    }
    expect(received).toEqual(sent);
    a.close();
    b.close();
  });

  it('a spare is sealed like any buffer: the sender cannot shrink it, the receiver cannot grow it', async () => {
    const [a, theirs] = Comms.pair();
    const b = new SyncComms(theirs);
    SharedBuffer.reserve(3 * PAGE, 1);
    const buf = SharedBuffer.create(3 * PAGE);
    expect(SharedBuffer.spares(3 * PAGE)).toBe(0);
    expect(() => ftruncateSync(buf.fd, PAGE)).toThrow(expect.objectContaining({ code: 'EPERM' }));
    await a.sendBuffer(buf);
    const got = b.recvBuffer();
    expect(() => ftruncateSync(got.fd, 8 * PAGE)).toThrow(expect.objectContaining({ code: 'EPERM' }));
    expect(() => ftruncateSync(got.fd, 0)).toThrow(expect.objectContaining({ code: 'EPERM' }));
    got.bytes[3 * PAGE - 1] = 9; // the last page is still there for both
    expect(buf.bytes[3 * PAGE - 1]).toBe(9);
    got.close();
    buf.close();
    a.close();
    b.close();
  });

  it('bad arguments are TypeErrors naming the argument', () => {
    expect(() => SharedBuffer.reserve(-1)).toThrow(/size must be/);
    expect(() => SharedBuffer.reserve(PAGE, 1.5)).toThrow(/count must be/);
  });

  it('a sandboxee reserves buffers before its filter, makes them after it without memfd_create, and gets no refill', async () => {
    const script = [
      `import { Client, SharedBuffer } from '@sbx/client';`,
      `SharedBuffer.reserve(${PAGE}, 2);`,
      'Client.sandboxMeHere();',
      `const a = SharedBuffer.create(${PAGE}); a.bytes[0] = 7;`,
      `const b = SharedBuffer.create(${PAGE});`,
      'await new Promise((r) => setTimeout(r, 50));', // an automatic refill would run here
      `console.log('made', a.bytes[0], b.bytes[0], SharedBuffer.spares(${PAGE}));`,
      `SharedBuffer.create(${PAGE});`, // no spare left: memfd_create, which the filter stops
      `console.log('not reached');`,
    ].join('\n');
    const b = new PolicyBuilder().allowNodeRuntime({ threads: false });
    addNodeView(b);
    const { result, stdout } = await runNodeMeHere(script, b.build());
    expect(stdout, result.toString()).toBe('made 7 0 0\n');
    expect(result.status).toBe('VIOLATION');
    expect(result.violation).toMatchObject({ syscall: 'memfd_create' });
  });

  it('a forked child (custom-fork mode) never holds its forkserver’s spares: they are closed at the fork, and each child gets a memfd of its own', async () => {
    const policy = forkNodePolicy();
    const server = await startForkServer(
      process.execPath,
      [
        process.execPath,
        '--single-threaded',
        '--v8-pool-size=1',
        join(repoRoot, 'test', 'fixtures', 'buffer-fork-server.mjs'),
      ],
      { policy, cwd: repoRoot, env: { PATH: '/usr/bin:/bin' }, forkTimeoutMs: 5000 },
    );
    try {
      const replies: Array<{ inherited: number[]; mine: number; firstByte: number; inheritedLeft: number }> = [];
      for (let i = 0; i < 3; i++) {
        const ex = new Executor(server, { limits: { walltime: 20 } });
        const comms = ex.ipc.comms; // asked before the run: the child gets the channel
        const sandbox = new Sandbox(ex, policy);
        await sandbox.runAsync();
        await comms.sendMessage({ go: true });
        const reply = (await comms.recvMessage()) as (typeof replies)[number] & { error?: string };
        expect(reply.error).toBeUndefined();
        replies.push(reply);
        expect((await sandbox.awaitResult()).status).toBe('OK');
        comms.close();
      }
      const mine = replies.map((r) => r.mine);
      expect(new Set(mine).size).toBe(3);
      for (const r of replies) {
        // The forkserver's two reserved spares were closed in the child at the fork, before any
        // of its code ran: a copy would show it what the forkserver later writes there.
        expect(r.inherited).toEqual([]);
        expect(r.firstByte).toBe(0);
        expect(r.inheritedLeft).toBe(0);
      }
    } finally {
      await server.close();
    }
  });
});
