// Comms by address (Sandbox2's Comms(socket_name) / ListeningComms), Status messages, peer
// credentials and exchangeTLV; hostile peers (truncated or bad Status, a header announcing too
// much, a peer gone mid-message) give clear errors, no hang and no leaked fd.
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Comms, CommsError, CommsListener, Tag } from '@sbx/client';
import { native } from '@sbx/client/internal';
import { isolationPolicy, openFdCount, runCaptured, testcase } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'sbx-comms-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const abstractName = () => `sbx-test-${process.pid}-${Math.random().toString(36).slice(2)}`;

/** A raw peer: writes bytes as they are, for hostile input. */
function rawPair(): [Comms, number] {
  const [a, b] = native().socketpair(false, false);
  return [new Comms(a), b];
}
function header(tag: number, len: bigint): Buffer {
  const h = Buffer.alloc(12);
  h.writeUInt32LE(tag, 0);
  h.writeBigUInt64LE(len, 4);
  return h;
}
function rawSend(fd: number, buf: Buffer): void {
  native().sendmsg(fd, buf, 0, buf.length, []);
}

describe('Comms.connect and CommsListener', () => {
  for (const kind of ['path', 'abstract'] as const) {
    it(`${kind}: connect, exchangeTLV, Status both ways, peer credentials`, async () => {
      const before = openFdCount();
      const address =
        kind === 'path' ? join(dir, `s-${Math.random().toString(36).slice(2)}`) : { abstract: abstractName() };
      const listener = CommsListener.listen(address);
      const accepted = listener.accept();
      const client = Comms.connect(address);
      const server = await accepted;

      const reply = (async () => {
        const req = await server.recvTLV(7);
        await server.sendTLV(8, Buffer.concat([req.data, Buffer.from('!')]));
      })();
      expect(await client.exchangeTLV(7, Buffer.from('ping'), 8)).toEqual({ tag: 8, data: Buffer.from('ping!') });
      await reply;

      await client.sendStatus({ code: 'NOT_FOUND', message: 'no such thing: ü' });
      expect(await server.recvStatus()).toEqual({ code: 'NOT_FOUND', message: 'no such thing: ü' });
      await server.sendStatus({ code: 'OK', message: '' });
      expect(await client.recvStatus()).toEqual({ code: 'OK', message: '' });

      const me = { pid: process.pid, uid: process.getuid!(), gid: process.getgid!() };
      expect(server.peerCredentials()).toEqual(me);
      expect(client.peerCredentials()).toEqual(me);

      client.close();
      server.close();
      listener.close();
      await expect(listener.accept()).rejects.toMatchObject({ code: 'CLOSED' });
      expect(openFdCount()).toBeLessThanOrEqual(before); // a leak only adds; a GC finalizer may close one meanwhile
    });
  }

  it('a sandboxee that connects to a listening Comms is seen with its own pid and uid', async () => {
    const sockDir = mkdtempSync(join(dir, 'sock-'));
    chmodSync(dir, 0o755); // the sandbox's uid walks to the socket
    chmodSync(sockDir, 0o755);
    const path = join(sockDir, 'server');
    const listener = CommsListener.listen(path);
    chmodSync(path, 0o777); // the sandboxee's uid connects
    const accepted = listener.accept();
    const run = runCaptured([testcase('net_client'), 'unix', path], {
      policy: isolationPolicy((b) => b.addDirectory(sockDir)),
      executor: { limits: { walltime: 20 } },
    });
    const server = await Promise.race([accepted, run.then((c) => c)]);
    if (!(server instanceof Comms)) {
      listener.close();
      throw new Error(
        `the sandboxee did not connect: ${JSON.stringify(server.result)} ${server.stdout} ${server.stderr}`,
      );
    }
    const cred = server.peerCredentials();
    server.close(); // net_client's exchange then ends with EOF
    const { result } = await run;
    listener.close();
    // Closing may beat net_client's "ping": it then dies of SIGPIPE, which is fine here.
    if (result.status !== 'OK') {
      expect(result.status).toBe('SIGNALED');
      expect([13, 'SIGPIPE']).toContain(result.signal);
    }
    expect(cred.pid).toBeGreaterThan(0);
    expect(cred.pid).not.toBe(process.pid);
    if (process.getuid!() === 0) expect(cred.uid).not.toBe(0);
    else expect(cred.uid).toBe(process.getuid!());
  });

  it('bad addresses and missing listeners are clear errors', () => {
    const before = openFdCount();
    expect(() => Comms.connect(join(dir, 'missing'))).toThrow(CommsError);
    expect(() => Comms.connect(join(dir, 'missing'))).toThrow(/ENOENT/);
    expect(() => Comms.connect({ abstract: abstractName() })).toThrow(/ECONNREFUSED/);
    expect(() => Comms.connect(`/${'x'.repeat(200)}`)).toThrow(/holds 107/);
    expect(() => Comms.connect('')).toThrow(TypeError);
    expect(() => Comms.connect('a\0b')).toThrow(/NUL/);
    // @ts-expect-error not an address
    expect(() => Comms.connect(42)).toThrow(TypeError);
    const path = join(dir, 'taken');
    const l = CommsListener.listen(path);
    expect(() => CommsListener.listen(path)).toThrow(/EADDRINUSE/);
    expect(() => CommsListener.listen(path, { backlog: 0 })).toThrow(/backlog/);
    l.close();
    expect(openFdCount()).toBeLessThanOrEqual(before); // a leak only adds; a GC finalizer may close one meanwhile
  });
});

describe('hostile Status and TLV input', () => {
  const cases: Array<[string, Buffer, string, RegExp]> = [
    [
      'a truncated Status (2 bytes)',
      Buffer.concat([header(Tag.Status, 2n), Buffer.of(1, 0)]),
      'BAD_SIZE',
      /at least 4 bytes/,
    ],
    ['an unknown Status code', Buffer.concat([header(Tag.Status, 4n), Buffer.of(99, 0, 0, 0)]), 'BAD_SIZE', /code 99/],
    [
      'a Status text that is not UTF-8',
      Buffer.concat([header(Tag.Status, 6n), Buffer.of(2, 0, 0, 0, 0xff, 0xfe)]),
      'BAD_UTF8',
      /not UTF-8/,
    ],
    ['another tag where a Status belongs', Buffer.concat([header(5, 1n), Buffer.of(1)]), 'TAG_MISMATCH', /./],
  ];
  for (const [what, bytes, code, message] of cases) {
    it(`${what}: ${code}`, async () => {
      const [ours, theirs] = rawPair();
      rawSend(theirs, bytes);
      const err = await ours.recvStatus().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(CommsError);
      expect(err).toMatchObject({ code });
      expect((err as Error).message).toMatch(message);
      ours.close();
      native().close(theirs);
    });
  }

  it('a header announcing more than maxMessageSize, and a peer gone mid-message, end the channel without a hang', async () => {
    const before = openFdCount();
    const [a, aPeer] = rawPair();
    rawSend(aPeer, header(Tag.Status, 1n << 40n));
    await expect(a.recvStatus()).rejects.toMatchObject({ code: 'MESSAGE_TOO_LARGE' });
    const [b, bPeer] = rawPair();
    rawSend(bPeer, Buffer.concat([header(Tag.Status, 10n), Buffer.of(1, 0)]));
    native().close(bPeer);
    await expect(b.recvStatus()).rejects.toMatchObject({ code: 'TRUNCATED' });
    // exchangeTLV against a peer that goes away: rejected, not hung.
    const [c, cPeer] = rawPair();
    native().close(cPeer);
    await expect(c.exchangeTLV(1, Buffer.from('x'))).rejects.toBeInstanceOf(CommsError);
    for (const x of [a, b, c]) x.close();
    native().close(aPeer);
    expect(openFdCount()).toBeLessThanOrEqual(before); // a leak only adds; a GC finalizer may close one meanwhile
    expect(() => a.peerCredentials()).toThrow(/closed/);
  });

  it('sendStatus refuses an unknown code', () => {
    const [ours, theirs] = rawPair();
    // @ts-expect-error not a code
    expect(() => ours.sendStatus({ code: 'NOPE', message: '' })).toThrow(/code must be one of/);
    ours.close();
    native().close(theirs);
  });
});
