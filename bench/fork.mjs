// Custom-fork mode: a fork request to "child running JS and answering on its Comms", against a
// cold `node child.js` doing the same, in one run, interleaved; forking on request and from
// spares (children forked ahead, ForkingClient.setSpares(2)).
//   fork  Executor(forkServer) + Sandbox.runAsync() (REQUEST → FORKED + pidfd) + a job message;
//         the forked child calls Client.sandboxMeHere() (its policy from the executor, the
//         monitor attached) and answers. Forkservers (test/fixtures/fork-server.mjs) hold ~50 MB
//         and ~500 MB of heap.
//         With spares, also without the child's sandboxMeHere(): the fork path alone.
//   cold  child_process.spawn(node, [bench/fixtures/cold-child.mjs]) with a socketpair at fd 3:
//         loads @sbx/client and answers (no sandbox at all), spawn to answer.
// Forkserver, children and cold peer all run the node that runs this file; forkBenchLines() runs
// it again under other supported Node lines (`<node> bench/fork.mjs --json`), so that each line's
// ratios are against its own cold start.
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Comms, Executor, PolicyBuilder, Sandbox, startForkServer } from '@sbx/executor';
import { closeQuietly } from '@sbx/client/internal';
import { findLine } from '../native/node-lines.mjs';

const repo = join(import.meta.dirname, '..');
const RUNS = Number(process.env.SBX_BENCH_FORK_RUNS) || 150;
const WARMUP = 10;
/** Quiet before a request to a forkserver with spares: time to fork the spares again. */
const SPARE_GAP_MS = 40;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function policy() {
  const b = new PolicyBuilder().allowNodeRuntime({ threads: true, openFiles: true }).allowSyscalls(['getppid']);
  b.addFile(process.execPath).addLibrariesForBinary(process.execPath).addDirectory(repo).addDirectory('/proc');
  for (const f of ['/dev/null', '/dev/urandom']) b.addFile(f, { writable: true });
  b.addTmpfs('/tmp', { sizeBytes: 16 << 20 });
  return b.build();
}

export function startServer(pol, heapMb, spares = 0, sandboxed = false) {
  return startForkServer(
    process.execPath,
    [
      process.execPath,
      '--single-threaded',
      '--v8-pool-size=1',
      join(repo, 'test/fixtures/fork-server.mjs'),
      String(heapMb),
      String(spares),
    ],
    {
      policy: pol,
      cwd: repo,
      env: { PATH: '/usr/bin:/bin' },
      // the first request waits for the warm-up (a 500 MB heap to build): not a hang on a busy machine
      forkTimeoutMs: 120_000,
      // sandboxed spares: children forked and sandboxed with this policy ahead of requests
      ...(sandboxed ? { childPolicy: pol, sandboxedSpares: 2 } : {}),
    },
  );
}

export async function forkOnce(server, pol, job = { kind: 'ping' }, trace = false) {
  const t0 = performance.now();
  const ex = new Executor(server, { limits: { walltime: 30 }, trace });
  const comms = ex.ipc.comms;
  const sandbox = new Sandbox(ex, pol);
  await sandbox.runAsync();
  await comms.sendMessage(job);
  const reply = await comms.recvMessage();
  const ms = performance.now() - t0;
  const result = await sandbox.awaitResult();
  comms.close();
  if (!reply.ok || result.status !== 'OK')
    throw new Error(`fork bench: a child failed: ${result.toString()} ${JSON.stringify(reply)}`);
  return { ms, reply, result, trace: sandbox.forkTrace, sandboxedAhead: sandbox.sandboxedAhead };
}

async function coldOnce() {
  const [ours, theirs] = Comms.pair();
  const t0 = performance.now();
  const child = spawn(process.execPath, [join(import.meta.dirname, 'fixtures/cold-child.mjs')], {
    cwd: repo,
    stdio: ['ignore', 'ignore', 'inherit', theirs],
  });
  closeQuietly(theirs);
  const reply = await ours.recvMessage();
  const ms = performance.now() - t0;
  await new Promise((r) => child.on('exit', r));
  ours.close();
  if (!reply.ok) throw new Error('cold child failed');
  return ms;
}

/** The forkserver's host pid (the only child of its sandbox's init) and its RSS in MB. */
export function serverStats(server) {
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const s = readFileSync(`/proc/${d}/status`, 'utf8');
      if (Number(/^PPid:\s+(\d+)/m.exec(s)[1]) !== server.pid) continue;
      return {
        pid: Number(d),
        rssMb: Number(/^VmRSS:\s+(\d+)/m.exec(s)[1]) / 1024,
        threads: Number(/^Threads:\s+(\d+)/m.exec(s)[1]),
        fds: readdirSync(`/proc/${d}/fd`).length,
      };
    } catch {}
  }
  return null;
}

const pct = (xs, q) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
};

export async function forkBench() {
  const pol = policy();
  const out = [];
  const cold = [];
  for (const [heapMb, spares, sandboxed] of [
    [50, 0],
    [50, 2],
    [50, 0, true],
    [500, 0],
    [500, 2],
  ]) {
    const server = await startServer(pol, heapMb, spares, sandboxed);
    try {
      for (let i = 0; i < WARMUP; i++) await forkOnce(server, pol);
      for (let i = 0; i < 3; i++) await coldOnce();
      const rss = serverStats(server).rssMb;
      const fork = [];
      const bare = [];
      for (let i = 0; i < RUNS; i++) {
        // With spares, requests come SPARE_GAP_MS apart: the figure is a request that finds a
        // spare waiting (the forkserver forks them after 10 ms of quiet), not a back-to-back stream.
        if (spares || sandboxed) await sleep(SPARE_GAP_MS);
        if (sandboxed) await server.waitForSandboxedSpares(); // both there, as the spares' figure assumes
        const once = await forkOnce(server, pol);
        if (sandboxed && !once.sandboxedAhead) throw new Error('fork bench: a request did not get a sandboxed spare');
        fork.push(once.ms);
        if (spares && heapMb === 50) {
          await sleep(SPARE_GAP_MS);
          bare.push((await forkOnce(server, pol, { kind: 'ping', sandbox: false })).ms);
        }
        if (i % 3 === 0) cold.push(await coldOnce());
      }
      const mode = sandboxed ? '2 sandboxed spares (childPolicy)' : spares ? `${spares} spares` : 'fork on request';
      const name = `${mode} → sandboxed child answers on Comms, forkserver RSS ${rss.toFixed(0)} MB`;
      const coldName = 'cold `node child.js` answers on Comms';
      out.push({
        name: `${name}, p50`,
        unit: 'ms',
        value: pct(fork, 0.5),
        peer: coldName,
        peerValue: pct(cold, 0.5),
        goal: heapMb !== 50 ? undefined : spares || sandboxed ? '<= 0.025× (40× faster)' : '<= 0.05× (20× faster)',
      });
      out.push({
        name: `${name}, p99`,
        unit: 'ms',
        value: pct(fork, 0.99),
        peer: coldName,
        peerValue: pct(cold, 0.99),
      });
      if (bare.length) {
        // the same without the child's sandboxMeHere() (handshake, filter, monitor): the fork path alone
        const bareName = `${spares} spares → child answers on Comms without sandboxMeHere(), forkserver RSS ${rss.toFixed(0)} MB`;
        out.push({
          name: `${bareName}, p50`,
          unit: 'ms',
          value: pct(bare, 0.5),
          peer: coldName,
          peerValue: pct(cold, 0.5),
        });
        out.push({
          name: `${bareName}, p99`,
          unit: 'ms',
          value: pct(bare, 0.99),
          peer: coldName,
          peerValue: pct(cold, 0.99),
        });
      }
    } finally {
      await server.close();
    }
  }
  return out;
}

/**
 * Per-stage medians of traced requests (Executor(forkServer, { trace: true })): µs from the
 * request to each stage, for a forkserver of `heapMb` with `spares`. Stages done ahead in a spare
 * come out negative. `node bench/fork.mjs --trace [runs]` prints both modes as tables.
 */
export async function forkTraceTable(heapMb, spares, runs = 40, sandboxed = false) {
  const pol = policy();
  const server = await startServer(pol, heapMb, spares, sandboxed);
  const at = new Map();
  try {
    for (let i = 0; i < WARMUP; i++) await forkOnce(server, pol);
    for (let i = 0; i < runs; i++) {
      if (spares || sandboxed) await sleep(SPARE_GAP_MS); // the spares are there again
      if (sandboxed) await server.waitForSandboxedSpares();
      const { trace } = await forkOnce(server, pol, { kind: 'ping' }, true);
      for (const s of trace.stages) {
        const k = `${s.process}: ${s.stage}`;
        if (!at.has(k)) at.set(k, []);
        at.get(k).push(s.us);
      }
    }
  } finally {
    await server.close();
  }
  return [...at].map(([stage, us]) => ({ stage, us: pct(us, 0.5) })).sort((a, b) => a.us - b.us);
}

/**
 * forkBench() under this node and under the other Node lines in SBX_BENCH_FORK_LINES (default
 * "24"; the npm builds in the node-lines cache), each figure named by its line.
 */
export async function forkBenchLines() {
  const label = (records, version) =>
    records.map((r) => ({ ...r, name: `node ${version}: ${r.name}`, peer: `${r.peer} (node ${version})` }));
  const out = label(await forkBench(), process.versions.node);
  const lines = (process.env.SBX_BENCH_FORK_LINES ?? '24').split(/[ ,]+/).filter(Boolean).map(Number);
  for (const major of lines) {
    const line = findLine(major);
    if (!line) {
      process.stderr.write(
        `bench fork: node ${major} is not in the node-lines cache (node native/node-lines.mjs install ${major}): skipped\n`,
      );
      continue;
    }
    if (line.node === process.execPath) continue;
    process.stderr.write(`bench: fork under node ${line.version}...\n`);
    const r = spawnSync(line.node, [import.meta.filename, '--json'], {
      cwd: repo,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
      maxBuffer: 16 << 20,
    });
    if (r.status !== 0) throw new Error(`bench fork under node ${line.version} failed (exit ${r.status})`);
    out.push(...label(JSON.parse(r.stdout), line.version));
  }
  return out;
}

if (process.argv[1] === import.meta.filename && process.argv.includes('--json')) {
  process.stdout.write(JSON.stringify(await forkBench()));
}
if (process.argv[1] === import.meta.filename && process.argv.includes('--trace')) {
  const runs = Number(process.argv[process.argv.indexOf('--trace') + 1]) || 40;
  for (const [spares, sandboxed] of [
    [0, false],
    [2, false],
    [0, true],
  ]) {
    const mode = sandboxed ? '2 sandboxed spares' : spares ? `${spares} spares` : 'fork on request';
    console.log(`\n${mode}, ~50 MB heap: µs from the request (p50 of ${runs})`);
    let prev = 0;
    for (const { stage, us } of await forkTraceTable(50, spares, runs, sandboxed)) {
      console.log(`| ${stage} | ${us.toFixed(0)} | ${us < 0 ? 'ahead' : (us - prev).toFixed(0)} |`);
      if (us >= 0) prev = us;
    }
  }
}
