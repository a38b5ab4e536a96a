// Comms across real processes: Node<->Node, Node<->C, fds over SCM_RIGHTS, and a hostile peer.
import { spawn } from 'node:child_process';
import { closeSync, readFileSync, openSync, writeSync } from 'node:fs';
import { once } from 'node:events';
import { describe, expect, it } from 'vitest';
import { Comms, CommsError, DEFAULT_QUEUE_LIMITS, SyncComms, Tag, type CommsOptions } from '@sbx/client';
import { native } from '@sbx/client/internal';
import { openFdCount, testcase, tick } from './helpers.js';

/** Starts `cmd` with the far end of a fresh Comms pair as fd 3 (SBX_COMMS_FD=3). */
function peer(cmd: string, args: string[]) {
  const [comms, theirs] = Comms.pair();
  const child = spawn(cmd, args, {
    stdio: ['ignore', 'inherit', 'inherit', theirs],
    env: { ...process.env, SBX_COMMS_FD: '3' },
  });
  closeSync(theirs);
  const exited = once(child, 'exit') as Promise<[number | null, string | null]>;
  return { comms, child, exited };
}

const nodePeer = (body: string) =>
  peer(process.execPath, [
    '--input-type=module',
    '-e',
    `import { SyncComms } from '@sbx/client'; const s = new SyncComms(); ${body}`,
  ]);

async function roundTripAll(c: Comms): Promise<void> {
  await c.sendBool(true);
  expect(await c.recvBool()).toBe(true);
  for (const [send, recv, vals] of [
    ['sendInt8', 'recvInt8', [-128, 0, 127]],
    ['sendUint8', 'recvUint8', [0, 255]],
    ['sendInt16', 'recvInt16', [-32768, 32767]],
    ['sendUint16', 'recvUint16', [0, 65535]],
    ['sendInt32', 'recvInt32', [-2147483648, 2147483647]],
    ['sendUint32', 'recvUint32', [0, 4294967295]],
  ] as const) {
    for (const v of vals) {
      await (c[send] as (x: number) => Promise<void>)(v);
      expect(await (c[recv] as () => Promise<number>)()).toBe(v);
    }
  }
  for (const v of [-(2n ** 63n), 0n, 2n ** 63n - 1n]) {
    await c.sendInt64(v);
    expect(await c.recvInt64()).toBe(v);
  }
  await c.sendUint64(2n ** 64n - 1n);
  expect(await c.recvUint64()).toBe(2n ** 64n - 1n);
  for (const s of ['', 'héllo wörld ✓', 'x'.repeat(1 << 20)]) {
    await c.sendString(s);
    expect(await c.recvString()).toBe(s);
  }
  const big = Buffer.alloc(3 << 20);
  for (let i = 0; i < big.length; i++) big[i] = (i * 7) & 0xff;
  await c.sendBytes(big);
  expect((await c.recvBytes()).equals(big)).toBe(true);
  const msg = { a: 1, b: [true, null, 'x'], c: { d: 2.5 } };
  await c.sendMessage(msg);
  expect(await c.recvMessage()).toEqual(msg);
  await c.sendTLV(0x1234, Buffer.from('user'));
  expect((await c.recvTLV(0x1234)).data.toString()).toBe('user');
}

describe('Comms Node <-> Node', () => {
  it('round-trips every type with a synchronous Node peer', async () => {
    const { comms, exited } = nodePeer(
      `for (;;) { let m; try { m = s.recvTLV(); } catch (e) { if (e.code === 'PEER_CLOSED') process.exit(0); throw e; } s.sendTLV(m.tag, m.data); }`,
    );
    await roundTripAll(comms);
    comms.close();
    expect((await exited)[0]).toBe(0);
  });

  it('passes fds that arrive usable in both directions', async () => {
    const { comms, exited } = nodePeer(
      `import fs from 'node:fs'; const fd = s.recvFd(); fs.writeSync(fd, 'written by the peer'); fs.closeSync(fd);
       const [r, w] = [fs.openSync('/dev/null', 'r'), 0]; s.sendFd(r); s.sendString('done');`,
    );
    const [r, w] = native().pipe();
    await comms.sendFd(w);
    closeSync(w);
    const got = await comms.recvFd();
    expect(got).toBeGreaterThan(2);
    closeSync(got);
    expect(await comms.recvString()).toBe('done');
    expect(readFileSync(r).toString()).toBe('written by the peer');
    closeSync(r);
    comms.close();
    expect((await exited)[0]).toBe(0);
  });

  it('stress: 20,000 messages each way, interleaved', async () => {
    const N = 20000;
    const { comms, exited } = nodePeer(
      `for (let i = 0; i < ${N}; i++) { s.sendUint32(i); } let sum = 0; for (let i = 0; i < ${N}; i++) sum += s.recvUint32(); s.sendUint64(BigInt(sum));`,
    );
    const sends: Promise<void>[] = [];
    for (let i = 0; i < N; i++) sends.push(comms.sendUint32(i));
    for (let i = 0; i < N; i++) expect(await comms.recvUint32()).toBe(i);
    await Promise.all(sends);
    expect(await comms.recvUint64()).toBe(BigInt((N * (N - 1)) / 2));
    comms.close();
    expect((await exited)[0]).toBe(0);
  });
});

describe('Comms Node <-> C (libsbx_comms)', () => {
  it('round-trips every type through the C echo peer', async () => {
    const { comms, exited } = peer(testcase('comms_peer'), ['echo']);
    await roundTripAll(comms);
    comms.close();
    expect((await exited)[0]).toBe(0);
  });

  it('reads the values the C peer sends', async () => {
    const { comms, exited } = peer(testcase('comms_peer'), ['types']);
    expect(await comms.recvBool()).toBe(true);
    expect(await comms.recvInt8()).toBe(-128);
    expect(await comms.recvUint8()).toBe(255);
    expect(await comms.recvInt16()).toBe(-32768);
    expect(await comms.recvUint16()).toBe(65535);
    expect(await comms.recvInt32()).toBe(-2147483648);
    expect(await comms.recvUint32()).toBe(4294967295);
    expect(await comms.recvInt64()).toBe(-(2n ** 63n));
    expect(await comms.recvUint64()).toBe(2n ** 64n - 1n);
    expect(await comms.recvString()).toBe('hello from C');
    expect([...(await comms.recvBytes())]).toEqual([0, 1, 2, 255]);
    expect(await comms.recvMessage()).toEqual({ a: 1 });
    expect(await comms.recvVersion()).toBe(1);
    expect((await exited)[0]).toBe(0);
    comms.close();
  });

  it('a pipe fd sent to C comes back written', async () => {
    const { comms, exited } = peer(testcase('comms_peer'), ['pipe-write']);
    const [r, w] = native().pipe();
    await comms.sendFd(w);
    closeSync(w);
    expect((await exited)[0]).toBe(0);
    expect(readFileSync(r).toString()).toBe('hello from C\n');
    closeSync(r);
    comms.close();
  });

  it('the C echo peer sends fds back', async () => {
    const { comms, exited } = peer(testcase('comms_peer'), ['echo']);
    const [r, w] = native().pipe();
    await comms.sendFd(w);
    closeSync(w);
    const back = await comms.recvFd();
    writeSync(back, 'round trip');
    closeSync(back);
    expect(readFileSync(r).toString()).toBe('round trip');
    closeSync(r);
    comms.close();
    expect((await exited)[0]).toBe(0);
  });
});

/** A raw socket end we write hostile bytes (and fds) into. */
function hostile(options?: CommsOptions) {
  const [ours, theirs] = native().socketpair(false, false);
  const comms = new Comms(ours, options);
  const write = (buf: Buffer, fd: number | number[] = -1) => native().sendmsg(theirs, buf, 0, buf.length, fd);
  const header = (tag: number, len: bigint) => {
    const h = Buffer.alloc(12);
    h.writeUInt32LE(tag, 0);
    h.writeBigUInt64LE(len, 4);
    return h;
  };
  return { comms, write, header, theirs, closePeer: () => closeSync(theirs) };
}

const hostileFd = (h: ReturnType<typeof hostile>) => h.theirs;

async function expectCommsError(p: Promise<unknown>, code: string, message?: RegExp): Promise<CommsError> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(CommsError);
  expect((err as CommsError).code).toBe(code);
  if (message) expect((err as CommsError).message).toMatch(message);
  return err as CommsError;
}

describe('Comms against a hostile peer', () => {
  it('a peer that closes cleanly gives PEER_CLOSED', async () => {
    const before = openFdCount();
    const h = hostile();
    h.closePeer();
    await expectCommsError(h.comms.recvUint32(), 'PEER_CLOSED');
    h.comms.close();
    expect(openFdCount()).toBeLessThanOrEqual(before); // a leak only adds fds; a finalizer elsewhere may close one meanwhile
  });

  it('a truncated header gives TRUNCATED', async () => {
    const before = openFdCount();
    const h = hostile();
    h.write(h.header(Tag.Uint32, 4n).subarray(0, 7));
    h.closePeer();
    await expectCommsError(h.comms.recvUint32(), 'TRUNCATED', /7 of 12 header bytes/);
    h.comms.close();
    expect(openFdCount()).toBeLessThanOrEqual(before); // a leak only adds fds; a finalizer elsewhere may close one meanwhile
  });

  it('a peer dying mid-payload gives TRUNCATED', async () => {
    const h = hostile();
    h.write(Buffer.concat([h.header(Tag.Bytes, 1000n), Buffer.alloc(10)]));
    h.closePeer();
    await expectCommsError(h.comms.recvBytes(), 'TRUNCATED', /10 of 1000 payload bytes/);
    h.comms.close();
  });

  it('an oversized announcement is refused without allocating it', async () => {
    const h = hostile({ maxMessageSize: 1024 });
    h.write(h.header(Tag.Bytes, 2n ** 62n));
    await expectCommsError(h.comms.recvBytes(), 'MESSAGE_TOO_LARGE', /above the limit of 1024/);
    h.comms.close();
    h.closePeer();
  });

  it('a wrong tag names both tags', async () => {
    const h = hostile();
    h.write(Buffer.concat([h.header(Tag.String, 2n), Buffer.from('hi')]));
    await expectCommsError(
      h.comms.recvUint32(),
      'TAG_MISMATCH',
      /expected a Uint32 \(0x80000007\) message, got String \(0x80000100\)/,
    );
    h.comms.close();
    h.closePeer();
  });

  it('a wrong-size scalar is BAD_SIZE', async () => {
    const h = hostile();
    h.write(Buffer.concat([h.header(Tag.Uint32, 3n), Buffer.alloc(3)]));
    await expectCommsError(h.comms.recvUint32(), 'BAD_SIZE');
    h.comms.close();
    h.closePeer();
  });

  it('garbage msgpack is BAD_MSGPACK', async () => {
    const h = hostile();
    h.write(Buffer.concat([h.header(Tag.Msgpack, 3n), Buffer.from([0xc1, 0xc1, 0xc1])]));
    await expectCommsError(h.comms.recvMessage(), 'BAD_MSGPACK');
    h.comms.close();
    h.closePeer();
  });

  it('an fd attached to a non-Fd message is refused and closed', async () => {
    const before = openFdCount();
    const h = hostile();
    const devnull = openSync('/dev/null', 'r');
    h.write(Buffer.concat([h.header(Tag.Uint32, 4n), Buffer.alloc(4)]), devnull);
    closeSync(devnull);
    await expectCommsError(h.comms.recvUint32(), 'UNEXPECTED_FD');
    h.comms.close();
    h.closePeer();
    await tick();
    expect(openFdCount()).toBeLessThanOrEqual(before); // a leak only adds fds; a finalizer elsewhere may close one meanwhile
  });

  it('an Fd message without an fd is MISSING_FD', async () => {
    const h = hostile();
    h.write(h.header(Tag.Fd, 0n));
    await expectCommsError(h.comms.recvFd(), 'MISSING_FD');
    h.comms.close();
    h.closePeer();
  });

  it('two fds on one Fd message are refused and both closed', async () => {
    const before = openFdCount();
    const h = hostile();
    const x = openSync('/dev/null', 'r');
    const y = openSync('/dev/null', 'r');
    h.write(h.header(Tag.Fd, 0n), [x, y]);
    closeSync(x);
    closeSync(y);
    await expectCommsError(h.comms.recvFd(), 'UNEXPECTED_FD', /carried 2 fds/);
    h.comms.close();
    h.closePeer();
    await tick();
    expect(openFdCount()).toBeLessThanOrEqual(before); // a leak only adds fds; a finalizer elsewhere may close one meanwhile
  });

  it('an Fd message that announces a payload is refused', async () => {
    const before = openFdCount();
    const h = hostile();
    const x = openSync('/dev/null', 'r');
    h.write(h.header(Tag.Fd, 5n), x);
    closeSync(x);
    await expectCommsError(h.comms.recvFd(), 'UNEXPECTED_FD', /must be empty/);
    h.comms.close();
    h.closePeer();
    await tick();
    expect(openFdCount()).toBeLessThanOrEqual(before); // a leak only adds fds; a finalizer elsewhere may close one meanwhile
  });

  it('a pending receive rejects when this side closes', async () => {
    const h = hostile();
    const p = h.comms.recvUint32();
    h.comms.close();
    await expectCommsError(p, 'CLOSED');
    h.closePeer();
  });

  it('the synchronous side reports a truncated message and a tag mismatch', () => {
    const [a, b] = native().socketpair(false, false);
    const s = new SyncComms(a);
    native().sendmsg(b, Buffer.concat([hdr(Tag.String, 2n), Buffer.from('hi')]), 0, 14, -1);
    expect(() => s.recvUint32()).toThrow(/expected a Uint32 \(0x80000007\) message, got String/);
    native().sendmsg(b, hdr(Tag.Bytes, 100n), 0, 12, -1);
    closeSync(b);
    expect(() => s.recvBytes()).toThrow(CommsError);
    s.close();
  });
});

describe('SyncComms.recvBytes({ into })', () => {
  const send = (fd: number, tag: number, payload: Buffer) => {
    const m = Buffer.concat([hdr(tag, BigInt(payload.length)), payload]);
    native().sendmsg(fd, m, 0, m.length, -1);
  };

  it('reads a payload that fits into the caller buffer, and a longer one into a new Buffer', () => {
    const [a, b] = native().socketpair(false, false);
    const s = new SyncComms(a);
    const into = Buffer.alloc(16, 0xee);
    send(b, Tag.Bytes, Buffer.from('0123456789'));
    const small = s.recvBytes({ into });
    expect(small.toString()).toBe('0123456789');
    expect(small.buffer).toBe(into.buffer);
    expect(small.byteOffset).toBe(into.byteOffset);
    expect(into.subarray(0, 10).toString()).toBe('0123456789');
    expect(into[10]).toBe(0xee); // nothing past the payload is written

    const long = Buffer.alloc(40);
    for (let i = 0; i < long.length; i++) long[i] = i;
    send(b, Tag.Bytes, long);
    const got = s.recvBytes({ into });
    expect(got.equals(long)).toBe(true);
    expect(got.buffer).not.toBe(into.buffer);
    expect(into.subarray(0, 10).toString()).toBe('0123456789'); // untouched by the longer payload

    send(b, Tag.Bytes, Buffer.alloc(0));
    expect(s.recvBytes({ into }).length).toBe(0);

    // A view with an offset into a larger ArrayBuffer, and a plain Uint8Array
    const backing = new Uint8Array(64);
    const view = backing.subarray(8, 24);
    send(b, Tag.Bytes, Buffer.from('abc'));
    const v = s.recvBytes({ into: view });
    expect(v.toString()).toBe('abc');
    expect(v.byteOffset).toBe(8);
    expect(Buffer.from(backing.subarray(8, 11)).toString()).toBe('abc');

    // The channel stays in step after a tag mismatch
    send(b, Tag.String, Buffer.from('hi'));
    send(b, Tag.Bytes, Buffer.from('after'));
    expect(() => s.recvBytes({ into })).toThrow(/expected a Bytes .* message, got String/);
    expect(s.recvBytes({ into }).toString()).toBe('after');

    expect(() => s.recvBytes({ into: 5 as unknown as Uint8Array })).toThrow(TypeError);
    expect(() => s.recvBytes({ into: new Uint16Array(4) as unknown as Uint8Array })).toThrow(TypeError);
    closeSync(b);
    expect(() => s.recvBytes({ into })).toThrow(CommsError);
    s.close();
  });
});

function hdr(tag: number, len: bigint): Buffer {
  const h = Buffer.alloc(12);
  h.writeUInt32LE(tag, 0);
  h.writeBigUInt64LE(len, 4);
  return h;
}

/** Writes `stream` into raw socket end `fd` (non-blocking) until done, or until the reader has
 *  taken nothing for `stallTicks` ticks in a row. Returns the bytes written. */
async function writeUntilStalled(fd: number, stream: Buffer, stallTicks = 20): Promise<number> {
  native().setNonBlocking(fd, true);
  let off = 0;
  let stalled = 0;
  while (off < stream.length && stalled < stallTicks) {
    const n = native().sendmsg(fd, stream, off, Math.min(stream.length - off, 1 << 20), -1);
    if (n < 0) {
      stalled++;
      await tick(5);
    } else {
      stalled = 0;
      off += n;
    }
  }
  return off;
}

function numberedBytesMessages(count: number, size: number): Buffer {
  const parts: Buffer[] = [];
  for (let i = 0; i < count; i++) {
    const body = Buffer.alloc(size, i & 0xff);
    body.writeUInt32LE(i, 0);
    parts.push(hdr(Tag.Bytes, BigInt(size)), body);
  }
  return Buffer.concat(parts);
}

describe('Comms bounds what it holds for a peer (backpressure) and never leaks a received fd', () => {
  it('stops reading once maxQueuedBytes are queued: the writer blocks, nothing is dropped', async () => {
    const h = hostile({ maxQueuedBytes: 1 << 20 });
    const stream = numberedBytesMessages(256, 64 << 10); // 16 MiB
    const written = await writeUntilStalled(hostileFd(h), stream);
    // 1 MiB queued, plus what one read may bring past the bound and the kernel's socket buffers.
    expect(written).toBeLessThan(4 << 20);
    // Taking the messages lets the writer go on; every message arrives, in order.
    const rest = writeUntilStalled(hostileFd(h), stream.subarray(written), 2000);
    for (let i = 0; i < 256; i++) expect((await h.comms.recvBytes()).readUInt32LE(0)).toBe(i);
    expect(await rest).toBe(stream.length - written);
    h.comms.close();
    h.closePeer();
  });

  it('bounds a channel with the default limits too (16 MiB, 4096 messages, 64 fds)', async () => {
    expect(DEFAULT_QUEUE_LIMITS).toEqual({ maxQueuedBytes: 16 << 20, maxQueuedMessages: 4096, maxQueuedFds: 64 });
    const h = hostile();
    const written = await writeUntilStalled(hostileFd(h), numberedBytesMessages(256, 256 << 10)); // 64 MiB
    expect(written).toBeLessThan(24 << 20);
    const small = hostile();
    const many = await writeUntilStalled(
      hostileFd(small),
      Buffer.concat(Array.from({ length: 60_000 }, () => hdr(Tag.Barrier, 0n))),
    );
    expect(many / 12).toBeLessThan(30_000); // 4096 queued and the kernel's socket buffers: not all 60,000
    for (const x of [h, small]) {
      x.comms.close();
      x.closePeer();
    }
  });

  it('holds at most maxQueuedFds received fds, and close() closes them all', async () => {
    const before = openFdCount();
    const h = hostile();
    const devnull = openSync('/dev/null', 'r');
    native().setNonBlocking(hostileFd(h), true);
    let sent = 0;
    for (let stalled = 0; sent < 500 && stalled < 20; ) {
      if (h.write(hdr(Tag.Fd, 0n), devnull) < 0) {
        stalled++;
        await tick(5);
      } else {
        stalled = 0;
        sent++;
      }
    }
    closeSync(devnull);
    expect(openFdCount() - before).toBeLessThanOrEqual(64 + 16 + 2); // queued + one read + the two socket ends
    expect(sent).toBeLessThan(500);
    for (let i = 0; i < 100; i++) closeSync(await h.comms.recvFd()); // taking them lets more in
    h.comms.close();
    h.closePeer();
    await tick();
    expect(openFdCount()).toBeLessThanOrEqual(before);
  });

  it('close() closes queued fds after the peer went away (PEER_CLOSED first)', async () => {
    const before = openFdCount();
    const h = hostile();
    const devnull = openSync('/dev/null', 'r');
    for (let i = 0; i < 10; i++) h.write(hdr(Tag.Fd, 0n), devnull);
    closeSync(devnull);
    h.closePeer();
    closeSync(await h.comms.recvFd());
    await tick(); // the channel reads on to the EOF: it has failed (PEER_CLOSED) with 9 fds queued
    h.comms.close();
    expect(openFdCount()).toBeLessThanOrEqual(before);
  });

  it('more than 16 fds on a message in progress: UNEXPECTED_FD, every received fd closed', async () => {
    const before = openFdCount();
    const h = hostile();
    const fds = Array.from({ length: 40 }, () => openSync('/dev/null', 'r'));
    h.write(Buffer.concat([hdr(Tag.Bytes, 100n), Buffer.alloc(50)]), fds);
    for (const fd of fds) closeSync(fd);
    await expectCommsError(h.comms.recvBytes(), 'UNEXPECTED_FD');
    await tick();
    expect(openFdCount()).toBeLessThanOrEqual(before + 2); // the two socket ends, no received fd
    h.comms.close();
    h.closePeer();
    expect(openFdCount()).toBeLessThanOrEqual(before);
  });

  it('decodes msgpack strictly: 0xc1, extension types and trailing bytes are BAD_MSGPACK', async () => {
    for (const bad of [
      [0xc1],
      [0xd4, 0x00, 0x00],
      [0x91, 0xc1],
      [0xc7, 0x01, 0x65, 0x00],
      [0x01, 0x02],
      [0x92, 0x01],
      [0xdd, 0xff, 0xff, 0xff, 0xff],
    ]) {
      const h = hostile();
      h.write(Buffer.concat([hdr(Tag.Msgpack, BigInt(bad.length)), Buffer.from(bad)]));
      await expectCommsError(h.comms.recvMessage(), 'BAD_MSGPACK', /not plain msgpack/);
      h.comms.close();
      h.closePeer();
    }
    const [a, b] = Comms.pair();
    const peerEnd = new Comms(b);
    const value = {
      n: [1, -1, 2 ** 40, 1.5],
      s: 'é',
      b: Buffer.from([1, 2]),
      t: new Date(1234567),
      nested: { deep: [[[]]] },
      u: undefined,
    };
    await a.sendMessage(value);
    expect(await peerEnd.recvMessage()).toEqual({ ...value, u: null }); // msgpack has no undefined: it goes out as nil
    a.close();
    peerEnd.close();
  });
});
