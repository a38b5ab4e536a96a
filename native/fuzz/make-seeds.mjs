#!/usr/bin/env node
// Writes the seed corpora of the fuzz targets (committed; rerun after a protocol change):
//   corpus/fuzz_comms_recv/     valid and broken Comms streams in that target's chunk format
//   corpus/fuzz_request_parse/  SBX_FS_SPAWN op lists, from minimal to every op
import { mkdirSync, writeFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';

const here = import.meta.dirname;

// ---- Comms: byte 0 = mode | max << 3; then chunks: u8 head (len & 0x3f, 0x80 one fd, 0x40 two)
const Tag = {
  Bool: 0x80000001,
  Uint32: 0x80000007,
  Int64: 0x80000008,
  String: 0x80000100,
  Bytes: 0x80000101,
  Barrier: 0x80000103,
  Version: 0x80000104,
  Msgpack: 0x80000180,
  Fd: 0x80000201,
};
function tlv(tag, payload = Buffer.alloc(0), announced = payload.length) {
  const h = Buffer.alloc(12);
  h.writeUInt32LE(tag >>> 0, 0);
  h.writeBigUInt64LE(BigInt(announced), 4);
  return Buffer.concat([h, payload]);
}
const u32 = (v) => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(v);
  return b;
};
/** Cuts `stream` into chunks of at most `size` bytes; `fds` maps chunk index -> 0x80 or 0x40. */
function chunks(config, parts) {
  const out = [Buffer.from([config])];
  for (const { bytes, fds = 0, size = 63 } of parts) {
    for (let i = 0; i < bytes.length; i += size) {
      const piece = bytes.subarray(i, i + size);
      out.push(Buffer.from([piece.length | (i === 0 ? fds : 0)]), piece);
    }
  }
  return Buffer.concat(out);
}
const MAX_1M = 3 << 3,
  MAX_100 = 1 << 3,
  MAX_16 = 0;
const comms = {
  uint32: chunks(0 | MAX_1M, [{ bytes: tlv(Tag.Uint32, u32(7)) }]),
  string: chunks(2 | MAX_1M, [{ bytes: tlv(Tag.String, Buffer.from('hello')) }]),
  fd: chunks(4 | MAX_1M, [{ bytes: tlv(Tag.Fd), fds: 0x80 }]),
  'fd-then-bytes': chunks(0 | MAX_1M, [
    { bytes: tlv(Tag.Fd), fds: 0x80 },
    { bytes: tlv(Tag.Bytes, Buffer.alloc(100, 7)), size: 40 },
  ]),
  'two-fds': chunks(0 | MAX_1M, [{ bytes: tlv(Tag.Fd), fds: 0x40 }]),
  'stray-fd': chunks(0 | MAX_1M, [{ bytes: tlv(Tag.Uint32, u32(1)), fds: 0x80 }]),
  'fd-without-fd': chunks(0 | MAX_1M, [{ bytes: tlv(Tag.Fd) }]),
  'fd-with-payload': chunks(0 | MAX_1M, [{ bytes: tlv(Tag.Fd, Buffer.from('xy')), fds: 0x80 }]),
  'too-large': chunks(1 | MAX_100, [{ bytes: tlv(Tag.Bytes, Buffer.alloc(8), 1 << 30) }]),
  truncated: chunks(0 | MAX_1M, [{ bytes: tlv(Tag.String, Buffer.from('abc'), 10) }]),
  'expect-bytes': chunks(5 | MAX_1M, [
    { bytes: tlv(Tag.String, Buffer.from('no')) },
    { bytes: tlv(Tag.Bytes, Buffer.from('yes')) },
  ]),
  'into-small': chunks(6 | MAX_1M, [
    { bytes: tlv(Tag.Bytes, Buffer.alloc(70, 1)) },
    { bytes: tlv(7, Buffer.from('u')) },
  ]),
  mixed: chunks(7 | MAX_1M, [
    { bytes: tlv(Tag.Bool, Buffer.from([1])) },
    { bytes: tlv(Tag.Int64, Buffer.alloc(8, 0xff)) },
    { bytes: tlv(Tag.Msgpack, Buffer.from([0x81, 0xa1, 0x61, 0x01])) },
    { bytes: tlv(Tag.Fd), fds: 0x80 },
    { bytes: tlv(Tag.Version, u32(1)) },
    { bytes: tlv(Tag.Barrier) },
    { bytes: tlv(0x1234, Buffer.from('user tag')) },
  ]),
  'tag-zero': chunks(0 | MAX_16, [{ bytes: tlv(0, Buffer.from('z')) }]),
  // mode 3 receives Bool, Int8, Uint8, Int16, Uint16, Int32, Uint32, Int64, Uint64, Version,
  // Bytes, Msgpack in turn
  typed: chunks(3 | MAX_1M, [
    { bytes: tlv(Tag.Bool, Buffer.from([0])) },
    { bytes: tlv(0x80000002, Buffer.from([0x80])) },
    { bytes: tlv(0x80000003, Buffer.from([0xff])) },
    { bytes: tlv(0x80000004, Buffer.alloc(2, 0xff)) },
    { bytes: tlv(0x80000005, Buffer.alloc(2, 1)) },
    { bytes: tlv(0x80000006, Buffer.alloc(4, 2)) },
    { bytes: tlv(Tag.Uint32, u32(3)) },
    { bytes: tlv(Tag.Int64, Buffer.alloc(8, 4)) },
    { bytes: tlv(0x80000009, Buffer.alloc(8, 5)) },
    { bytes: tlv(Tag.Version, u32(2)) },
    { bytes: tlv(Tag.Bytes, Buffer.from('bytes')) },
    { bytes: tlv(Tag.Msgpack, Buffer.from([0xc0])) },
  ]),
};

// ---- Op lists: u32 op | u64 len | payload
const Op = {
  REQUEST_ID: 1,
  EXEC_PATH: 2,
  ARG: 3,
  ENV: 4,
  CWD: 5,
  NAMESPACES: 6,
  HOSTNAME: 7,
  ID_MAP: 8,
  BIND: 9,
  TMPFS: 10,
  PROC: 11,
  DEV: 12,
  MKDIR: 13,
  SYMLINK: 14,
  RLIMIT: 15,
  SECCOMP: 16,
  SECCOMP_FLAGS: 17,
  FD: 18,
  SETUP_SOCKET: 19,
  CGROUP: 20,
  WALLTIME: 22,
};
function op(n, payload = Buffer.alloc(0)) {
  const h = Buffer.alloc(12);
  h.writeUInt32LE(n, 0);
  h.writeBigUInt64LE(BigInt(payload.length), 4);
  return Buffer.concat([h, payload]);
}
const u64 = (v) => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(v));
  return b;
};
const s = (x) => Buffer.from(x);
const words = (...ws) => Buffer.concat(ws.map(u32));
const ns = 0x10000000 | 0x20000 | 0x20000000 | 0x40000000 | 0x8000000 | 0x4000000 | 0x2000000;
const filter = Buffer.concat([
  Buffer.from([0x20, 0, 0, 0]),
  u32(4), // ld [4] (arch)
  Buffer.from([0x15, 0, 1, 0]),
  u32(0xc000003e), // jeq x86_64
  Buffer.from([0x06, 0, 0, 0]),
  u32(0x7fff0000), // ret ALLOW
  Buffer.from([0x06, 0, 0, 0]),
  u32(0x80000000), // ret KILL_PROCESS
]);
const minimal = [op(Op.REQUEST_ID, u64(1)), op(Op.EXEC_PATH, s('/bin/true')), op(Op.ARG, s('true'))];
const requests = {
  minimal: Buffer.concat(minimal),
  full: Buffer.concat([
    op(Op.REQUEST_ID, u64(42)),
    op(Op.EXEC_PATH, s('/usr/bin/env')),
    op(Op.ARG, s('env')),
    op(Op.ARG, s('')),
    op(Op.ENV, s('PATH=/usr/bin:/bin')),
    op(Op.CWD, s('/tmp')),
    op(Op.NAMESPACES, u32(ns)),
    op(Op.HOSTNAME, s('sbx')),
    op(Op.ID_MAP, words(1000, 65534, 1000, 65534)),
    op(Op.BIND, Buffer.concat([u32(0), u32(4), s('/usr'), s('/usr')])),
    op(Op.BIND, Buffer.concat([u32(1 | 4), u32(9), s('/var/data'), s('/data')])),
    op(Op.SYMLINK, Buffer.concat([u32(7), s('usr/bin'), s('/bin')])),
    op(Op.TMPFS, Buffer.concat([u64(16 << 20), u32(0o1777), s('/tmp')])),
    op(Op.PROC, s('/proc')),
    op(Op.DEV, s('/dev')),
    op(Op.MKDIR, Buffer.concat([u32(0o755), s('/work')])),
    op(Op.RLIMIT, Buffer.concat([u32(7), u64(1024), u64(1024)])),
    op(Op.RLIMIT, Buffer.concat([u32(9), u64(-1n & 0xffffffffffffffffn), u64(-1n & 0xffffffffffffffffn)])),
    op(Op.SECCOMP, filter),
    op(Op.SECCOMP_FLAGS, u32(1)),
    op(Op.FD, u32(0)),
    op(Op.FD, u32(1)),
    op(Op.FD, u32(2)),
    op(Op.FD, u32(1023)),
    op(Op.SETUP_SOCKET),
    op(Op.CGROUP, s('/sys/fs/cgroup/sbx/1')),
    op(Op.WALLTIME, u64(120000)),
  ]),
  'bad-dotdot': Buffer.concat([
    ...minimal,
    op(Op.NAMESPACES, u32(0x20000 | 0x10000000)),
    op(Op.ID_MAP, words(1000, 1000, 1000, 1000)),
    op(Op.MKDIR, Buffer.concat([u32(0o755), s('/a/../b')])),
  ]),
  'bad-duplicate-fd': Buffer.concat([...minimal, op(Op.FD, u32(5)), op(Op.FD, u32(5))]),
  'bad-truncated': Buffer.concat(minimal).subarray(0, 30),
  'bad-length': Buffer.concat([
    op(Op.REQUEST_ID, u64(1)),
    Buffer.from([2, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
  ]),
};

for (const [dir, seeds] of [
  ['fuzz_comms_recv', comms],
  ['fuzz_request_parse', requests],
]) {
  const path = join(here, 'corpus', dir);
  rmSync(path, { recursive: true, force: true });
  mkdirSync(path, { recursive: true });
  for (const [name, bytes] of Object.entries(seeds)) writeFileSync(join(path, name), bytes);
  console.log(`${path}: ${Object.keys(seeds).length} seeds`);
}
