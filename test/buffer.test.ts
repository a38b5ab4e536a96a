// Shared-memory buffers (issue 7) end to end: the executor and a real sandboxee, Node
// (test/fixtures/buffer-peer.mjs) or C (native/testcases/buffer_peer.c), hand buffers to each
// other over ipc.comms; hostile sandboxees resize or substitute what they share, and the executor
// must answer with a clear error (or simply keep working), never a SIGBUS or a leak.
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { BufferError, Comms, SharedBuffer, SyncComms, Buffer as BufferAlias } from '@sbx/executor';
import { isolationPolicy, openFdCount, repoRoot, runCaptured, testcase, tick, type Captured } from './helpers.js';

const fixture = join(repoRoot, 'test', 'fixtures', 'buffer-peer.mjs');
const ENV = { PATH: '/usr/local/bin:/usr/bin:/bin' };
const PAGE = 4096;
const GiB = 1 << 30;
const EPERM = 1;

/** Runs argv in a sandbox (the repo mounted read-only, for the Node peer) while `talk` uses the
 *  executor's end of ipc.comms; closes the channel after talk and returns the run. */
async function withPeer(argv: string[], talk: (c: Comms) => Promise<void>): Promise<Captured> {
  let comms!: Comms;
  const run = runCaptured(argv, {
    policy: isolationPolicy((b) => b.addDirectory(repoRoot)),
    executor: { cwd: repoRoot, env: ENV, limits: { walltime: 60 } },
    before: (_s, e) => {
      comms = e.ipc.comms;
    },
  });
  try {
    await talk(comms);
  } finally {
    comms.close();
  }
  return run;
}

const nodePeer = (...args: string[]) => [process.execPath, fixture, ...args];
const cPeer = (...args: string[]) => [testcase('buffer_peer'), ...args];
const pattern = (i: number) => (i * 7) & 0xff;

/** Our memfd buffers: fds and mappings of this process whose name is a buffer's. */
function bufferFds(): number {
  let n = 0;
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      if (readlinkSync(`/proc/self/fd/${fd}`).startsWith('/memfd:')) n++;
    } catch {
      // closed meanwhile (the directory's own fd)
    }
  }
  return n;
}
function bufferMappings(): number {
  return readFileSync('/proc/self/maps', 'utf8')
    .split('\n')
    .filter((l) => l.includes('/memfd:')).length;
}

/** Sends `size` bytes of pattern to a transforming peer and checks the result in place. */
async function transformRoundTrip(comms: Comms, size: number): Promise<void> {
  const buf = SharedBuffer.create(size);
  const b = buf.bytes;
  for (let i = 0; i < size; i++) b[i] = pattern(i);
  await comms.sendBuffer(buf);
  expect(await comms.recvUint64()).toBe(BigInt(size));
  for (let i = 0; i < size; i++) if (b[i] !== (pattern(i) ^ 0xff)) expect.fail(`size ${size}: byte ${i} is ${b[i]}`);
  buf.close();
}

/** Receives a peer-made buffer, checks its pattern, marks it (0x42 at 0) and acks. */
async function receivePattern(comms: Comms, size: number): Promise<void> {
  const buf = await comms.recvBuffer({ expectedSize: size });
  expect(buf.size).toBe(size);
  const b = buf.bytes;
  const idx = size <= 1 << 20 ? [...Array(size).keys()] : [0, 1, 4095, size - 4096, size - 1];
  for (const i of idx) if (b[i] !== pattern(i)) expect.fail(`size ${size}: byte ${i} is ${b[i]}`);
  if (size > 0) b[0] = 0x42;
  await comms.sendUint32(1);
  buf.close();
}

const SIZES = [0, 1, PAGE - 1, PAGE, PAGE + 1, 1 << 20];

describe('SharedBuffer in one process', () => {
  it('is exported as SharedBuffer and Buffer, with fd, size, bytes and arrayBuffer', () => {
    expect(BufferAlias).toBe(SharedBuffer);
    const buf = SharedBuffer.create(PAGE + 1);
    expect(buf.size).toBe(PAGE + 1);
    expect(buf.bytes.length).toBe(PAGE + 1);
    expect(buf.arrayBuffer.byteLength).toBe(PAGE + 1);
    expect(buf.bytes.every((x) => x === 0)).toBe(true);
    expect(readlinkSync(`/proc/self/fd/${buf.fd}`)).toMatch(/^\/memfd:sbx-buffer/);
    const view = buf.bytes;
    buf.close();
    buf.close();
    expect(buf.closed).toBe(true);
    expect(view.length).toBe(0); // detached: JS cannot touch the unmapped pages
    expect(() => buf.fd).toThrow(expect.objectContaining({ code: 'CLOSED' }));
    expect(() => buf.bytes).toThrow(BufferError);
  });

  it('maps the same pages on both ends of a channel (sizes 0, 1, page ±1, 1 MiB)', async () => {
    const [comms, theirs] = Comms.pair();
    const sync = new SyncComms(theirs);
    for (const size of SIZES) {
      const a = SharedBuffer.create(size);
      await comms.sendBuffer(a);
      const b = sync.recvBuffer();
      expect(b.size).toBe(size);
      if (size > 0) {
        a.bytes[size - 1] = 7;
        expect(b.bytes[size - 1]).toBe(7);
      }
      a.close();
      b.close();
    }
    comms.close();
    sync.close();
  });

  it('refuses fds that are not memfds, with the fd left to the caller', () => {
    const fds = openFdCount();
    expect(() => SharedBuffer.fromFd(0)).toThrow(expect.objectContaining({ code: 'NOT_A_MEMFD' }));
    const buf = SharedBuffer.create(PAGE);
    expect(() => SharedBuffer.fromFd(buf.fd, { expectedSize: PAGE + 1 })).toThrow(
      expect.objectContaining({ code: 'WRONG_SIZE' }),
    );
    buf.close();
    expect(openFdCount()).toBeLessThanOrEqual(fds); // a leak only adds fds; GC may close an earlier buffer meanwhile
  });

  it('releases a forgotten buffer when it is garbage-collected', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    SharedBuffer.releaseSpares(); // create()'s spares (test/buffer-pool.test.ts) are not leaks
    const fds = bufferFds();
    const maps = bufferMappings();
    (() => {
      for (let i = 0; i < 50; i++) SharedBuffer.create(1 << 20).bytes[i] = 1;
    })();
    SharedBuffer.releaseSpares();
    expect(bufferMappings()).toBeGreaterThanOrEqual(maps + 50);
    for (let i = 0; i < 10 && (bufferFds() > fds || bufferMappings() > maps); i++) {
      gc();
      await tick(10);
    }
    expect(bufferFds()).toBe(fds);
    expect(bufferMappings()).toBe(maps);
  });
});

describe('SharedBuffer between the executor and a sandboxee', () => {
  for (const [lang, peer] of [
    ['Node', nodePeer],
    ['C', cPeer],
  ] as const) {
    it(`TS -> ${lang}: the sandboxee transforms in place (sizes 0, 1, page ±1, 1 MiB)`, async () => {
      const { result, stderr } = await withPeer(peer('transform'), async (comms) => {
        for (const size of SIZES) await transformRoundTrip(comms, size);
      });
      expect(result.status, stderr).toBe('OK');
      expect(result.exitCode).toBe(0);
    });

    for (const size of [0, 1, PAGE - 1, PAGE, PAGE + 1, GiB]) {
      it(`${lang} -> TS: the sandboxee creates ${size} bytes, the executor reads and writes them`, async () => {
        const { result, stderr } = await withPeer(peer('create', String(size)), (comms) => receivePattern(comms, size));
        expect(result.status, stderr).toBe('OK');
        expect(result.exitCode).toBe(0); // it saw the executor's 0x42
      });
    }
  }

  it('TS -> Node: a 1 GiB sparse buffer (only a few pages touched)', async () => {
    const { result, stderr } = await withPeer(nodePeer('touch'), async (comms) => {
      const buf = SharedBuffer.create(GiB);
      buf.bytes[0] = 1;
      buf.bytes[GiB - 1] = 2;
      await comms.sendBuffer(buf);
      expect(await comms.recvUint64()).toBe(BigInt(GiB));
      expect([buf.bytes[0], buf.bytes[GiB - 1]]).toEqual([2, 3]);
      buf.close();
    });
    expect(result.status, stderr).toBe('OK');
  });

  it('fd and mapping counts come back to baseline after 500 create/send/close cycles', async () => {
    SharedBuffer.releaseSpares();
    const fds = openFdCount();
    const bfds = bufferFds();
    const maps = bufferMappings();
    const { result } = await withPeer(cPeer('transform'), async (comms) => {
      for (let i = 0; i < 500; i++) {
        const buf = SharedBuffer.create(PAGE + i);
        buf.bytes[i] = 1;
        await comms.sendBuffer(buf);
        await comms.recvUint64();
        expect(buf.bytes[i]).toBe(0xfe);
        buf.close();
      }
      SharedBuffer.releaseSpares(); // create()'s spares (test/buffer-pool.test.ts) are not leaks
      expect(bufferFds()).toBe(bfds);
      expect(bufferMappings()).toBe(maps);
    });
    expect(result.status).toBe('OK');
    await tick();
    expect(openFdCount()).toBeLessThanOrEqual(fds); // a leak only adds fds; GC may close an earlier buffer meanwhile
    expect(bufferFds()).toBe(bfds);
    expect(bufferMappings()).toBe(maps);
  });
});

describe('SharedBuffer against a hostile sandboxee', () => {
  it('a sandboxee that truncates (and grows) its buffer after the executor mapped it gets EPERM; the executor reads on', async () => {
    const { result, stderr } = await withPeer(cPeer('truncate-after-send'), async (comms) => {
      const buf = await comms.recvBuffer();
      expect(buf.size).toBe(1 << 20);
      await comms.sendUint32(1); // mapped: now try to pull the pages away
      expect(await comms.recvInt32()).toBe(EPERM); // ftruncate(fd, 0)
      expect(await comms.recvInt32()).toBe(EPERM); // ftruncate(fd, 2 MiB)
      let sum = 0;
      for (const x of buf.bytes) sum += x; // every page, the last one included: no SIGBUS
      expect(sum).toBe(1 << 20);
      buf.close();
      await comms.sendUint32(1);
    });
    expect(result.status, stderr).toBe('OK');
  });

  for (const [lang, peer] of [
    ['Node', nodePeer],
    ['C', cPeer],
  ] as const) {
    it(`a ${lang} sandboxee cannot truncate a buffer the executor made and sent`, async () => {
      const { result, stderr } = await withPeer(peer('truncate-received'), async (comms) => {
        const buf = SharedBuffer.create(3 * PAGE);
        await comms.sendBuffer(buf);
        expect(await comms.recvInt32()).toBe(EPERM);
        buf.bytes[3 * PAGE - 1] = 1;
        expect(buf.bytes[3 * PAGE - 1]).toBe(1);
        buf.close();
      });
      expect(result.status, stderr).toBe('OK');
    });
  }

  const refusals: Array<[string, string[], string]> = [
    ['a regular file on a tmpfs', ['send-file', '/tmp/not-a-memfd'], 'NOT_A_MEMFD'],
    ['a regular file on a disk', ['send-file', '/bin/sh'], 'NOT_A_MEMFD'],
    ['a pipe', ['send-pipe'], 'NOT_A_MEMFD'],
    ['a memfd of another size than announced', ['wrong-size'], 'WRONG_SIZE'],
    ['a memfd that cannot be sealed', ['no-sealing'], 'SEAL_FAILED'],
  ];
  for (const [what, args, code] of refusals) {
    it(`refuses ${what} with ${code} and leaks no fd`, async () => {
      const fds = openFdCount();
      const bfds = bufferFds();
      const { result, stderr } = await withPeer(cPeer(...args), async (comms) => {
        const err = await comms.recvBuffer().then(
          () => null,
          (e: unknown) => e,
        );
        expect(err).toBeInstanceOf(BufferError);
        expect(err).toMatchObject({ code });
        expect(bufferFds()).toBe(bfds); // the refused fd is closed at once
        await comms.sendUint32(1); // the channel is still in step
      });
      expect(result.status, stderr).toBe('OK');
      await tick();
      expect(openFdCount()).toBeLessThanOrEqual(fds); // a leak only adds fds; GC may close an earlier buffer meanwhile
    });
  }

  it('recvBuffer({ expectedSize }) refuses another size and closes the fd', async () => {
    const fds = openFdCount();
    const { result } = await withPeer(cPeer('create', '4096'), async (comms) => {
      await expect(comms.recvBuffer({ expectedSize: 100 })).rejects.toMatchObject({ code: 'WRONG_SIZE' });
      await comms.sendUint32(1);
    });
    expect(result.exitCode).toBe(3); // the sandboxee never saw the executor's mark
    await tick();
    expect(openFdCount()).toBeLessThanOrEqual(fds); // a leak only adds fds; GC may close an earlier buffer meanwhile
  });

  it('recvBuffer({ maxSize }) refuses a larger announcement', async () => {
    const { result } = await withPeer(cPeer('create', String(GiB)), async (comms) => {
      await expect(comms.recvBuffer({ maxSize: 1 << 20 })).rejects.toMatchObject({ code: 'TOO_LARGE' });
      await comms.sendUint32(1);
    });
    expect(result.status).toBe('OK');
  });
});
