// Property tests of the streaming Comms decoder (decoder.ts), with a small seeded generator (no
// dependency; a failure prints its seed, and the same seed reproduces it).
//
// The reads are those a unix stream socket really gives (the model the decoder relies on): every
// message is one sendmsg() ("segment"), an fd batch is delivered with the first read that touches
// its segment, and that read stops at the end of that segment; otherwise a read may span segments
// and end anywhere. Reads use directTarget()/feedDirect() whenever the decoder offers a target, as
// Comms does.
//
// Properties:
//   1. any split of a valid stream decodes to exactly the messages sent, each Fd message with its
//      own fd, and no fd is closed;
//   2. any mutation of a valid stream (bytes, lengths, tags, fds added, dropped or doubled, split
//      or merged segments, truncation, junk) only ever throws CommsError with a documented code,
//      never asks Buffer.allocUnsafe for more than maxMessageSize, never emits a payload above it,
//      and accounts for every fd exactly once (emitted in a message or closed, never both, never
//      twice); after a failure every later feed closes its fds and throws the same error.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Decoder, type Message } from './decoder.js';
import { CommsError } from './errors.js';
import { HEADER_SIZE, Tag } from './tags.js';
import { rng, type Rng } from '../../../test/prng.js';

interface Segment {
  bytes: Buffer;
  fds: number[];
}

interface Sent {
  tag: number;
  data: Buffer;
  fd: number;
}

let nextFd = 1000;
const freshFd = (): number => nextFd++;

const FIXED: Array<[number, number]> = [
  [Tag.Bool, 1],
  [Tag.Int8, 1],
  [Tag.Uint16, 2],
  [Tag.Int32, 4],
  [Tag.Uint32, 4],
  [Tag.Int64, 8],
  [Tag.Uint64, 8],
  [Tag.Version, 4],
  [Tag.Barrier, 0],
];

function header(tag: number, len: bigint | number): Buffer {
  const h = Buffer.alloc(HEADER_SIZE);
  h.writeUInt32LE(tag >>> 0, 0);
  h.writeBigUInt64LE(BigInt(len), 4);
  return h;
}

function randomBytes(r: Rng, n: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  if (n > 256) {
    // Large payloads: a random 251-byte pattern, repeated (cheap, and still no two offsets alike).
    b.fill(randomBytes(r, 251));
    return b;
  }
  for (let i = 0; i < n; i++) b[i] = r.int(256);
  return b;
}

/** A payload length: mostly small, sometimes around the 64 KiB direct-read threshold or above. */
function payloadLength(r: Rng, max: number): number {
  const k = r.next();
  const n = k < 0.6 ? r.int(40) : k < 0.85 ? r.int(400) : k < 0.95 ? 65536 + r.int(3) - 1 : 65536 + r.int(200_000);
  return Math.min(n, max);
}

/** A valid stream: messages, and the segments (one sendmsg each) that carry them. */
function validStream(r: Rng, max: number): { sent: Sent[]; segments: Segment[] } {
  const sent: Sent[] = [];
  const segments: Segment[] = [];
  const count = 1 + r.int(12);
  for (let i = 0; i < count; i++) {
    const k = r.next();
    if (k < 0.2) {
      const fd = freshFd();
      sent.push({ tag: Tag.Fd, data: Buffer.alloc(0), fd });
      segments.push({ bytes: header(Tag.Fd, 0), fds: [fd] });
      continue;
    }
    let tag: number;
    let data: Buffer;
    if (k < 0.45) {
      const [t, n] = r.pick(FIXED);
      tag = t;
      data = randomBytes(r, n);
    } else {
      tag = k < 0.65 ? r.pick([Tag.String, Tag.Bytes, Tag.Msgpack]) : 1 + r.int(0x7fffffff);
      data = randomBytes(r, payloadLength(r, max));
    }
    sent.push({ tag, data, fd: -1 });
    segments.push({ bytes: Buffer.concat([header(tag, data.length), data]), fds: [] });
  }
  return { sent, segments };
}

/**
 * Feeds `segments` as a socket would deliver them, with random read sizes. Returns the messages
 * and the error (a CommsError, or anything else the decoder threw) if one ended the stream.
 * `end` also reports the end of the stream to the decoder (as Comms does on EOF).
 */
function deliver(
  r: Rng,
  d: Decoder,
  segments: Segment[],
  end: boolean,
): { out: Message[]; error: unknown; fedFds: number[] } {
  const starts: number[] = [];
  let total = 0;
  for (const s of segments) {
    starts.push(total);
    total += s.bytes.length;
  }
  const stream = Buffer.concat(segments.map((s) => s.bytes));
  const delivered = new Set<number>();
  const out: Message[] = [];
  const fedFds: number[] = [];
  let pos = 0;
  try {
    while (pos < total) {
      const direct = d.directTarget();
      const want = direct
        ? Math.min(direct.length, r.chance(0.5) ? direct.length : 1 + r.int(direct.length))
        : r.pick([1, 2, 3, 5, 11, 12, 13, 24, 100, 4096, 65536, 1 << 20]);
      let stop = Math.min(pos + want, total);
      let fds: number[] = [];
      // The first fd-carrying segment this read touches (and whose fds are still in the socket):
      // its fds come with this read, which ends with that segment at the latest.
      for (let i = 0; i < segments.length; i++) {
        const s0 = starts[i]!;
        const s1 = s0 + segments[i]!.bytes.length;
        if (s1 <= pos || s0 >= stop) continue;
        if (segments[i]!.fds.length && !delivered.has(i)) {
          delivered.add(i);
          fds = segments[i]!.fds;
          stop = Math.min(stop, s1);
          break;
        }
      }
      // A segment of zero bytes carrying fds cannot exist on a stream socket; skip any.
      fedFds.push(...fds);
      if (direct) stream.copy(direct.buf, direct.offset, pos, stop);
      const chunk = direct ? null : stream.subarray(pos, stop);
      watching = true; // only the decoder's own allocations count
      try {
        if (direct) d.feedDirect(stop - pos, fds, out);
        else d.feed(chunk!, fds, out);
      } finally {
        watching = false;
      }
      pos = stop;
    }
    if (end) d.end();
  } catch (err) {
    return { out, error: err, fedFds };
  }
  return { out, error: undefined, fedFds };
}

let allocs: number[] = [];
let watching = false;

const CODES = new Set(['PEER_CLOSED', 'TRUNCATED', 'MESSAGE_TOO_LARGE', 'UNEXPECTED_FD', 'MISSING_FD', 'IO']);

describe('Decoder properties', () => {
  beforeEach(() => {
    const original = Buffer.allocUnsafe.bind(Buffer);
    vi.spyOn(Buffer, 'allocUnsafe').mockImplementation((size: number) => {
      if (watching) allocs.push(size);
      return original(size);
    });
  });
  afterEach(() => vi.restoreAllMocks());

  it('any split of a valid stream decodes to the messages sent, fds included, closing none', () => {
    for (let seed = 1; seed <= 1500; seed++) {
      const r = rng(seed);
      const max = r.chance(0.5) ? 64 << 20 : 300_000;
      const { sent, segments } = validStream(r, max);
      const closed: number[] = [];
      const d = new Decoder(max, (fd) => closed.push(fd));
      const { out, error } = deliver(r, d, segments, false);
      const ctx = `seed ${seed}`;
      expect(error, ctx).toBeUndefined();
      expect(d.atBoundary, ctx).toBe(true);
      expect(out.length, ctx).toBe(sent.length);
      out.forEach((m, i) => {
        expect(m.tag, ctx).toBe(sent[i]!.tag);
        expect(m.fd, ctx).toBe(sent[i]!.fd);
        expect(m.data.equals(sent[i]!.data), `${ctx} message ${i}`).toBe(true);
      });
      expect(closed, ctx).toEqual([]);
      expect(() => d.end()).toThrow(expect.objectContaining({ code: 'PEER_CLOSED' }));
    }
  });

  it('any mutation fails only with CommsError, allocates within maxMessageSize, and accounts for every fd once', () => {
    for (let seed = 1; seed <= 3000; seed++) {
      const r = rng(seed * 7919);
      const max = r.pick([0, 1, 12, 100, 4096, 70_000, 300_000]);
      const { segments } = validStream(r, Math.max(max, 1));
      mutate(r, segments, max);
      const closed: number[] = [];
      const d = new Decoder(max, (fd) => closed.push(fd));
      allocs = [];
      const { out, error, fedFds } = deliver(r, d, segments, true);
      // After a failure, later reads are refused the same way, and their fds closed.
      let again: unknown;
      const late = [freshFd()];
      if (error) {
        try {
          d.feed(Buffer.from([1, 2, 3]), late, []);
        } catch (err) {
          again = err;
        }
      }
      const ctx = `seed ${seed}`;

      expect(error, ctx).toBeInstanceOf(CommsError); // deliver(..., end = true) always ends in an error
      expect(CODES.has((error as CommsError).code), `${ctx}: ${String(error)}`).toBe(true);
      expect(again, ctx).toBe(error);
      for (const size of allocs) expect(size, ctx).toBeLessThanOrEqual(max);
      for (const m of out) {
        expect(m.data.length, ctx).toBeLessThanOrEqual(max);
        expect(m.tag, ctx).not.toBe(0);
        expect(m.fd >= 0, ctx).toBe(m.tag === Tag.Fd);
      }
      const emitted = out.filter((m) => m.fd >= 0).map((m) => m.fd);
      const given = [...fedFds, ...late].sort((a, b) => a - b);
      const accounted = [...emitted, ...closed].sort((a, b) => a - b);
      expect(accounted, `${ctx}: every fd emitted or closed, exactly once`).toEqual(given);
    }
  });
});

/** 1-4 random mutations of a valid stream, in place. */
function mutate(r: Rng, segments: Segment[], max: number): void {
  const n = 1 + r.int(4);
  for (let k = 0; k < n; k++) {
    const i = r.int(segments.length);
    const s = segments[i]!;
    switch (r.int(11)) {
      case 0: // flip bytes anywhere
        if (s.bytes.length) {
          for (let j = 0, m = 1 + r.int(4); j < m; j++) {
            const at = r.int(s.bytes.length);
            s.bytes[at] = s.bytes[at]! ^ (1 + r.int(255));
          }
        }
        break;
      case 1: // announce another length (near the limit, huge, or off by a little)
        if (s.bytes.length >= HEADER_SIZE) {
          const len = r.pick([
            BigInt(max),
            BigInt(max) + 1n,
            0n,
            1n,
            0xffffffffn,
            0xffffffffffffffffn,
            BigInt(s.bytes.length - HEADER_SIZE + r.int(5) - 2),
          ]);
          s.bytes.writeBigUInt64LE(len < 0n ? 0n : len, 4);
        }
        break;
      case 2: // another tag: 0, Fd, a user tag
        if (s.bytes.length >= 4) s.bytes.writeUInt32LE(r.pick([0, Tag.Fd, Tag.Creds, 0xffffffff, 1 + r.int(100)]), 0);
        break;
      case 3: // fds where none belong
        s.fds = [...s.fds, ...Array.from({ length: 1 + r.int(2) }, freshFd)];
        break;
      case 4: // an Fd message without its fd
        s.fds = [];
        break;
      case 5: // split a segment; its fds go with one part
        if (s.bytes.length > 1) {
          const at = 1 + r.int(s.bytes.length - 1);
          const first = r.chance(0.5);
          segments.splice(
            i,
            1,
            { bytes: s.bytes.subarray(0, at), fds: first ? s.fds : [] },
            { bytes: s.bytes.subarray(at), fds: first ? [] : s.fds },
          );
        }
        break;
      case 6: // merge with the next segment
        if (i + 1 < segments.length) {
          const t = segments[i + 1]!;
          segments.splice(i, 2, { bytes: Buffer.concat([s.bytes, t.bytes]), fds: [...s.fds, ...t.fds] });
        }
        break;
      case 7: // truncate the stream
        if (s.bytes.length) {
          s.bytes = s.bytes.subarray(0, r.int(s.bytes.length));
          segments.length = i + 1;
          if (s.bytes.length === 0) s.fds = [];
        }
        break;
      case 8: // junk
        segments.splice(i, 0, { bytes: randomBytes(r, 1 + r.int(40)), fds: r.chance(0.3) ? [freshFd()] : [] });
        break;
      case 9: // a header alone, announcing a payload that never comes
        segments.splice(i, 0, { bytes: header(r.pick([Tag.Bytes, Tag.String, 5]), 1 + r.int(1000)), fds: [] });
        segments.length = i + 1;
        break;
      default: // drop a segment
        segments.splice(i, 1);
        break;
    }
    // A stream socket never delivers an empty sendmsg.
    for (let j = segments.length - 1; j >= 0; j--) if (segments[j]!.bytes.length === 0) segments.splice(j, 1);
    if (segments.length === 0) segments.push({ bytes: randomBytes(r, 5), fds: [] });
  }
}
