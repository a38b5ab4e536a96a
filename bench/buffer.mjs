// Hand-over of N bytes from the executor side to a peer: a shared-memory Buffer against Comms
// Bytes, N from 4 KiB to 1 GiB, both against the same synchronous Node peer (a child process
// with SyncComms on fd 3), in one run.
//
// Hand-over time: from "the data is ready in the sender's memory" to "the peer has it and says
// so" (its ack arrived):
//   Buffer: SharedBuffer.create(N) + sendBuffer + peer recvBuffer (seal, fstat, mmap) + the peer
//           reads the first and last byte + ack + both close. The producer writes its data into
//           the shared mapping in place of a private buffer, so filling is not part of the
//           hand-over (it is the producer's work either way); fresh shared pages do cost a page
//           fault each on first touch, which the "fill" column of the log shows for reference.
//   Bytes:  sendBytes(N bytes already in a Buffer) + peer recvBytes (libsbx_comms reads into a
//           malloc'ed block, copied into a Node Buffer) + ack.
// Median of several rounds per N (fewer for large N). Run alone: node bench/buffer.mjs
import { spawn } from 'node:child_process';
import { closeSync } from 'node:fs';
import { Comms, SharedBuffer } from '@sbx/client';

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;
const SIZES = [4 * KiB, 16 * KiB, 64 * KiB, MiB, 16 * MiB, 256 * MiB, GiB];
const MAX = 2 ** 31;

function peer() {
  const body = `
    import { SyncComms, CommsError } from '@sbx/client';
    const s = new SyncComms(3, { maxMessageSize: ${MAX} });
    for (;;) {
      const kind = s.recvUint32();
      if (kind === 1) {
        const b = s.recvBuffer();
        const x = b.size ? b.bytes[0] + b.bytes[b.size - 1] : 0;
        b.close();
        s.sendUint32(x);
      } else {
        const d = s.recvBytes();
        s.sendUint32(d.length ? d[0] + d[d.length - 1] : 0);
      }
    }`;
  const [comms, theirs] = Comms.pair({ maxMessageSize: MAX });
  const child = spawn(process.execPath, ['--input-type=module', '-e', body], {
    stdio: ['ignore', 'inherit', 'inherit', theirs],
  });
  closeSync(theirs);
  return { comms, child };
}

function rounds(size) {
  return size <= MiB ? 200 : size <= 16 * MiB ? 30 : 5;
}

async function viaBuffer(comms, size) {
  const times = [];
  const fills = [];
  for (let r = 0; r < rounds(size) + 2; r++) {
    const t0 = performance.now();
    const buf = SharedBuffer.create(size);
    const t1 = performance.now();
    if (r === 0) buf.bytes.fill(1); // reference only: first touch of every page
    const t2 = performance.now();
    buf.bytes[0] = 1;
    buf.bytes[size - 1] = 2;
    await comms.sendUint32(1);
    await comms.sendBuffer(buf);
    if ((await comms.recvUint32()) !== 3) throw new Error('buffer: the peer read other bytes');
    buf.close();
    const t3 = performance.now();
    if (r === 0) fills.push(t2 - t1);
    if (r >= 2) times.push(t3 - t0 - (t2 - t1));
  }
  return { ms: median(times), fillMs: fills[0] };
}

async function viaBytes(comms, size) {
  const data = Buffer.alloc(size, 0);
  data[0] = 1;
  data[size - 1] = 2;
  const times = [];
  for (let r = 0; r < rounds(size) + 2; r++) {
    const t0 = performance.now();
    await comms.sendUint32(2);
    comms.sendBytes(data);
    if ((await comms.recvUint32()) !== 3) throw new Error('bytes: the peer read other bytes');
    if (r >= 2) times.push(performance.now() - t0);
  }
  return median(times);
}

const label = (n) => (n >= GiB ? `${n / GiB} GiB` : n >= MiB ? `${n / MiB} MiB` : `${n / KiB} KiB`);

export async function bufferBench() {
  const { comms, child } = peer();
  const records = [];
  let first;
  try {
    for (const size of SIZES) {
      const b = await viaBuffer(comms, size);
      const bytesMs = await viaBytes(comms, size);
      first ??= b.ms;
      process.stderr.write(
        `  ${label(size)}: Buffer ${(b.ms * 1000).toFixed(1)} µs (fill, not counted: ${(b.fillMs * 1000).toFixed(0)} µs), Bytes ${(bytesMs * 1000).toFixed(1)} µs\n`,
      );
      records.push({
        name: `hand-over of ${label(size)}: Buffer vs Bytes`,
        unit: 'µs',
        value: b.ms * 1000,
        peer: 'Comms Bytes',
        peerValue: bytesMs * 1000,
        goal: size >= 16 * KiB ? '< 1× (16 KiB up)' : '',
      });
    }
    const last = records[records.length - 1];
    records.push({
      name: 'Buffer hand-over, 1 GiB vs 4 KiB',
      unit: 'µs',
      value: last.value,
      peer: 'Buffer hand-over of 4 KiB',
      peerValue: first * 1000,
      goal: '≈ 1× (flat in N)',
    });
  } finally {
    comms.close();
    child.kill();
  }
  return records;
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

if (import.meta.url === `file://${process.argv[1]}`) {
  for (const r of await bufferBench())
    console.log(
      `${r.name}: ${r.value.toFixed(1)} ${r.unit} vs ${r.peer} ${r.peerValue.toFixed(1)} ${r.unit} (${(r.value / r.peerValue).toFixed(3)}×)`,
    );
}
