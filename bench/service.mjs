// The code-runner service under load (examples/code-runner): requests per second and p50/p99
// latency of a tiny python program (`print(6*7)`) POSTed over HTTP, at 4 and 8 requests in flight,
// in one run, against the same service shape with other backends:
//   sbx        examples/code-runner/server.mjs (Runner, run(), the python policy), on demand
//   sbx-pool   the same served by a spawn pool of 8 slots (setSpawnPool): one long-lived service
//              process, one executor and forkserver, the pool refilling while requests come (no
//              pause for it between rounds); its requests/s against cp's is the goal (>= 1.0×)
//   cp         the same node:http handler, child_process.execFile('python3'), no sandbox
//   bwrap      the same, execFile('bwrap', [... comparable view ..., 'python3']) (skipped if absent)
// Each service admits `concurrency` runs at once (the Runner's limit, or the same p-limit for the
// peers), so the load generator's in-flight count is the service's concurrency.
import { execFile, spawnSync } from 'node:child_process';
import { createServer } from 'node:http';
import { join } from 'node:path';
import pLimit from 'p-limit';
import { setSpawnPool, spawnPoolStats } from '@sbx/executor';

const CODE = 'print(6*7)';
const WARMUP = 16;
const REQUESTS = 160;
/** The kinds take turns: REQUESTS / ROUNDS requests each per round. */
const ROUNDS = 8;
const POOL = 8;
/** Per run; generous, so that a loaded machine shows as latency, not as failures. */
const TIMEOUT_MS = 10_000;
const here = import.meta.dirname;

// --new-session and setsid: each peer's python gets a session of its own, as a sandboxee does
// (the forkserver calls setsid): with sched_autogroup a new session is a new scheduling group,
// and a loaded machine would otherwise favour whichever side has its own.
const BWRAP = [
  '--unshare-all',
  '--die-with-parent',
  '--new-session',
  '--ro-bind',
  '/usr',
  '/usr',
  '--symlink',
  'usr/bin',
  '/bin',
  '--symlink',
  'usr/lib',
  '/lib',
  '--symlink',
  'usr/lib64',
  '/lib64',
  '--ro-bind-try',
  '/etc/ld.so.cache',
  '/etc/ld.so.cache',
  '--proc',
  '/proc',
  '--dev',
  '/dev',
  '--tmpfs',
  '/tmp',
];

/** A node:http service with the example's shape, running python through `exec(code)` at most `concurrency` at once. */
async function peerService(concurrency, exec) {
  const limit = pLimit(concurrency);
  const server = createServer((req, res) => {
    const chunks = [];
    req.on('data', (d) => chunks.push(d));
    req.on('end', async () => {
      const job = JSON.parse(Buffer.concat(chunks).toString());
      const out = await limit(() => exec(job.code));
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(out));
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return server;
}

const execPeer = (file, pre) => (code) =>
  new Promise((resolve) => {
    execFile(
      file,
      [...pre, '/usr/bin/python3', '-I', '-S', '-c', code],
      { timeout: TIMEOUT_MS, maxBuffer: 64 * 1024 },
      (err, stdout, stderr) => resolve({ stdout, stderr, error: err ? String(err.message) : null }),
    );
  });

/** `total` POSTs with `inflight` at a time; returns the time taken and latencies (ms). */
async function load(port, inflight, total) {
  const lat = [];
  let next = 0;
  let bad = 0;
  let firstBad = '';
  const t0 = performance.now();
  const worker = async () => {
    while (next < total) {
      next++;
      const s = performance.now();
      const r = await fetch(`http://127.0.0.1:${port}/run`, {
        method: 'POST',
        body: JSON.stringify({ lang: 'python', code: CODE }),
      });
      const body = await r.json();
      if (r.status !== 200 || body.stdout !== '42\n') {
        bad++;
        firstBad ||= `${r.status} ${JSON.stringify(body).slice(0, 300)}`;
      }
      lat.push(performance.now() - s);
    }
  };
  await Promise.all(Array.from({ length: inflight }, worker));
  if (bad) throw new Error(`bench service: ${bad} of ${total} requests failed on port ${port}: ${firstBad}`);
  return { ms: performance.now() - t0, lat };
}

function quantile(xs, q) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
}

export async function serviceBench() {
  const { startServer } = await import(join(here, '..', 'examples', 'code-runner', 'server.mjs'));
  const bw = spawnSync('bwrap', [...BWRAP, '/usr/bin/python3', '-c', CODE], { encoding: 'utf8' });
  const hasBwrap = !bw.error && bw.status === 0;
  if (!hasBwrap)
    process.stderr.write(
      `bench service: bwrap unavailable (${bw.error?.message ?? bw.stderr.trim()}): its rows are skipped\n`,
    );
  // The pool stays on for the whole section; the pool-off service asks for on-demand sandboxes
  // (spawnPool: false), so that its slots stay untouched. The kinds run interleaved, in rounds.
  // The pool is full once, before the first round, and never waited for again: the figure is the
  // sustained load a long-lived service sees, with the refill competing with the requests.
  setSpawnPool({ size: POOL });
  const refilled = async () => {
    for (let i = 0; i < 500 && (await spawnPoolStats()).ready < POOL; i++) await new Promise((r) => setTimeout(r, 10));
  };
  const rows = [];
  for (const c of [4, 8]) {
    const kinds = {
      sbx: await startServer({ port: 0, concurrency: c, queue: 1024, timeout: TIMEOUT_MS, spawnPool: false }),
      pool: await startServer({ port: 0, concurrency: c, queue: 1024, timeout: TIMEOUT_MS }),
      cp: await peerService(c, execPeer('setsid', ['-w'])),
      ...(hasBwrap ? { bwrap: await peerService(c, execPeer('bwrap', BWRAP)) } : {}),
    };
    const res = Object.fromEntries(Object.keys(kinds).map((k) => [k, { ms: 0, n: 0, lat: [] }]));
    for (const k of Object.keys(kinds)) await load(kinds[k].address().port, c, WARMUP);
    await refilled();
    for (let round = 0; round < ROUNDS; round++) {
      for (const k of Object.keys(kinds)) {
        const r = await load(kinds[k].address().port, c, REQUESTS / ROUNDS);
        res[k].ms += r.ms;
        res[k].n += REQUESTS / ROUNDS;
        res[k].lat.push(...r.lat);
      }
    }
    for (const s of Object.values(kinds)) s.close();
    const rps = (k) => res[k].n / (res[k].ms / 1000);

    const name = (k) => `code-runner service, python print(6*7), ${c} in flight: ${k}`;
    const cpName = `the same service, child_process.execFile(setsid -w python3), no sandbox, ${c} in flight`;
    const bwName = `the same service, bwrap --unshare-all --new-session (ro /usr, --proc, --dev, --tmpfs /tmp) python3, ${c} in flight`;
    for (const [k, label] of [
      ['sbx', 'sbx (pool off)'],
      ['pool', `sbx (spawn pool ${POOL})`],
    ]) {
      for (const [peer, peerName] of [['cp', cpName], ...(hasBwrap ? [['bwrap', bwName]] : [])]) {
        rows.push({
          name: `${name(label)}, requests/s`,
          unit: '/s',
          value: rps(k),
          peer: peerName,
          peerValue: rps(peer),
          ...(k === 'pool' && peer === 'cp' ? { goal: '>= 1.0×' } : {}),
        });
        rows.push({
          name: `${name(label)}, p50`,
          unit: 'ms',
          value: quantile(res[k].lat, 0.5),
          peer: peerName,
          peerValue: quantile(res[peer].lat, 0.5),
        });
        rows.push({
          name: `${name(label)}, p99`,
          unit: 'ms',
          value: quantile(res[k].lat, 0.99),
          peer: peerName,
          peerValue: quantile(res[peer].lat, 0.99),
        });
      }
    }
  }
  setSpawnPool({ size: 0 });
  return rows;
}
