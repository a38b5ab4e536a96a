// Comms throughput and latency: TS<->TS (async executor side to a synchronous Node peer) and
// C<->C (native/comms/bench/comms_bench), each against a raw C socketpair loop in the same run.
import { spawn, spawnSync } from 'node:child_process';
import { closeSync } from 'node:fs';
import { join } from 'node:path';
import { Comms } from '@sbx/client';

const root = join(import.meta.dirname, '..');
const nodePeer = (body) => {
  const [comms, theirs] = Comms.pair();
  const child = spawn(
    process.execPath,
    ['--input-type=module', '-e', `import { SyncComms } from '@sbx/client'; const s = new SyncComms(3); ${body}`],
    {
      stdio: ['ignore', 'inherit', 'inherit', theirs],
    },
  );
  closeSync(theirs);
  return { comms, child };
};

/** reuse: the peer receives into one buffer of its own (recvBytes({ into })) instead of a new
 *  Buffer per message, as the raw C loop reuses its buffer. */
async function tsThroughput(size, totalBytes, reuse = false) {
  const n = Math.max(16, Math.round(totalBytes / size));
  const recv = reuse ? 's.recvBytes({ into })' : 's.recvBytes()';
  const { comms, child } = nodePeer(
    `const into = Buffer.allocUnsafeSlow(${size}); for (;;) { const n = s.recvUint32(); for (let i = 0; i < n; i++) ${recv}; s.sendUint32(n); }`,
  );
  const buf = Buffer.alloc(size, 1);
  const rounds = [];
  for (let r = 0; r < 5; r++) {
    const t0 = performance.now();
    await comms.sendUint32(n);
    for (let i = 0; i < n; i++) comms.sendBytes(buf);
    await comms.recvUint32();
    rounds.push((n * size) / 1e6 / ((performance.now() - t0) / 1000));
  }
  comms.close();
  child.kill();
  return median(rounds);
}

/** The executor's receive side: a synchronous Node peer sends as fast as it can, the async Comms
 *  takes each message (its queue bounds and backpressure are on this path). */
async function tsRecvThroughput(size, totalBytes) {
  const n = Math.max(16, Math.round(totalBytes / size));
  const { comms, child } = nodePeer(
    `const b = Buffer.alloc(${size}, 1); for (;;) { const n = s.recvUint32(); for (let i = 0; i < n; i++) s.sendBytes(b); }`,
  );
  const rounds = [];
  for (let r = 0; r < 5; r++) {
    const t0 = performance.now();
    await comms.sendUint32(n);
    for (let i = 0; i < n; i++) await comms.recvBytes();
    rounds.push((n * size) / 1e6 / ((performance.now() - t0) / 1000));
  }
  comms.close();
  child.kill();
  return median(rounds);
}

async function tsRoundTrip(n) {
  const { comms, child } = nodePeer(`for (;;) s.sendUint32(s.recvUint32() + 1);`);
  for (let i = 0; i < 200; i++) {
    await comms.sendUint32(i);
    await comms.recvUint32();
  }
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    comms.sendUint32(i);
    await comms.recvUint32();
  }
  const us = ((performance.now() - t0) * 1000) / n;
  comms.close();
  child.kill();
  return us;
}

function cBench() {
  const bin = join(root, 'native', 'build', 'comms', 'bench', 'comms_bench');
  const r = spawnSync(bin, [], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`comms_bench failed: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

export async function commsBench() {
  const c = cBench();
  const ts1m = await tsThroughput(1 << 20, 512 << 20, true);
  const ts1mNew = await tsThroughput(1 << 20, 512 << 20);
  const ts64k = await tsThroughput(64 << 10, 256 << 20);
  const tsRecv64k = await tsRecvThroughput(64 << 10, 256 << 20);
  const tsRecv64 = await tsRecvThroughput(64, 8 << 20);
  const tsRtt = await tsRoundTrip(5000);
  const raw = 'raw C socketpair';
  return [
    {
      name: 'Comms 1 MiB Bytes throughput, TS<->TS (receiver reuses its buffer)',
      unit: 'MB/s',
      value: ts1m,
      peer: raw,
      peerValue: c.raw_tput_1m_MBps,
      goal: '>= 0.7×',
    },
    {
      name: 'Comms 1 MiB Bytes throughput, TS<->TS (a new Buffer per message)',
      unit: 'MB/s',
      value: ts1mNew,
      peer: raw,
      peerValue: c.raw_tput_1m_MBps,
    },
    {
      name: 'Comms 64 KiB Bytes throughput, TS<->TS',
      unit: 'MB/s',
      value: ts64k,
      peer: raw,
      peerValue: c.raw_tput_64k_MBps,
    },
    {
      name: 'Comms 64 KiB Bytes receive throughput, TS<-Node (bounded queue)',
      unit: 'MB/s',
      value: tsRecv64k,
      peer: raw,
      peerValue: c.raw_tput_64k_MBps,
    },
    {
      name: 'Comms 64 B Bytes receive throughput, TS<-Node (bounded queue)',
      unit: 'MB/s',
      value: tsRecv64,
      peer: raw,
      peerValue: c.raw_tput_64k_MBps,
    },
    {
      name: 'Comms 1 MiB Bytes throughput, C<->C',
      unit: 'MB/s',
      value: c.comms_tput_1m_MBps,
      peer: raw,
      peerValue: c.raw_tput_1m_MBps,
      goal: '>= 0.9×',
    },
    {
      name: 'Comms 64 KiB Bytes throughput, C<->C',
      unit: 'MB/s',
      value: c.comms_tput_64k_MBps,
      peer: raw,
      peerValue: c.raw_tput_64k_MBps,
    },
    { name: 'Comms small-message round trip, TS<->TS', unit: 'µs', value: tsRtt, peer: raw, peerValue: c.raw_rtt_us },
    {
      name: 'Comms small-message round trip, C<->C',
      unit: 'µs',
      value: c.comms_rtt_us,
      peer: raw,
      peerValue: c.raw_rtt_us,
    },
  ];
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}
