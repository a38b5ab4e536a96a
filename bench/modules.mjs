// Sandboxed modules (@sbx/modules): the cost of a small call (add(1, 2) of
// test/fixtures/modules/sample.mjs), each figure against a peer measured in the same run.
// Each mode is measured in a block of its own, so that one mode's background work (a call-mode
// forkserver making its next spares) does not land in another's figures.
//   session   'session' mode: one sandboxed child, a round trip per call; interleaved with
//             comms     a plain node child answering on the same Comms (no sandbox): the floor
//             worker    a warm worker_threads Worker answering on a MessagePort
//             in-proc   the function called in this process
//   call      'call' mode: a fresh sandboxed child per call, with a spare ready (calls 40 ms
//             apart) and back to back (the spares cannot keep up); against
//             fresh     `node` spawned per call: imports the module, calls, prints, exits
//   throughput  'call' mode calls per second with two callers against one.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { MessageChannel, Worker } from 'node:worker_threads';
import { Comms } from '@sbx/client';
import { sandboxedModule } from '@sbx/modules';

const repo = join(import.meta.dirname, '..');
const moduleFile = join(repo, 'test', 'fixtures', 'modules', 'sample.mjs');
const RUNS = Number(process.env.SBX_BENCH_MODULE_RUNS ?? 150);
const ROUND_TRIPS = RUNS * 10;
const FRESH_RUNS = Math.max(10, Math.round(RUNS / 6));
const PACE_MS = 40;
const WARMUP = 10;

const pct = (xs, q) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
};
async function time(fn) {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function freshNode() {
  return new Promise((resolve, reject) => {
    const code = `import(${JSON.stringify(pathToFileURL(moduleFile).href)}).then((m) => process.stdout.write(String(m.add(1, 2))))`;
    const p = spawn(process.execPath, ['-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    p.stdout.on('data', (d) => {
      out += d;
    });
    p.on('error', reject);
    p.on('exit', () => (out === '3' ? resolve() : reject(new Error(`fresh node answered ${JSON.stringify(out)}`))));
  });
}

/** A warm worker answering on a MessagePort: call(fn, ...args) → its value. */
async function workerPeer() {
  const { port1, port2 } = new MessageChannel();
  const worker = new Worker(join(repo, 'bench', 'fixtures', 'modules-worker.mjs'), {
    workerData: { module: pathToFileURL(moduleFile).href, port: port2 },
    transferList: [port2],
  });
  let pending = null;
  port1.on('message', (v) => pending?.(v));
  const call = (fn, ...args) =>
    new Promise((resolve) => {
      pending = resolve;
      port1.postMessage({ fn, args });
    });
  return {
    call,
    close: async () => {
      port1.close();
      await worker.terminate();
    },
  };
}

/** A plain node child answering on Comms (fd 3): call() → one round trip. */
function commsPeer() {
  const [comms, theirs] = Comms.pair();
  const child = spawn(process.execPath, [join(repo, 'bench', 'fixtures', 'comms-echo.mjs')], {
    stdio: ['ignore', 'inherit', 'inherit', theirs],
  });
  const exited = new Promise((r) => child.on('exit', r));
  return {
    call: async () => {
      await comms.sendMessage({ fn: 'add', args: [1, 2], buffers: 0, kinds: '' });
      return comms.recvMessage();
    },
    close: async () => {
      comms.close();
      await exited;
    },
  };
}

async function sessionBlock() {
  const session = await sandboxedModule(moduleFile, { mode: 'session', spares: 0 });
  const mod = await import(pathToFileURL(moduleFile).href);
  const worker = await workerPeer();
  const comms = commsPeer();
  const t = { session: [], worker: [], comms: [], inproc: [] };
  try {
    for (let i = 0; i < WARMUP * 10; i++) {
      await session.api.add(1, 2);
      await worker.call('add', 1, 2);
      await comms.call();
    }
    for (let i = 0; i < ROUND_TRIPS; i++) {
      t.session.push(await time(() => session.api.add(1, 2)));
      t.comms.push(await time(() => comms.call()));
      t.worker.push(await time(() => worker.call('add', 1, 2)));
      t.inproc.push(await time(async () => mod.add(1, 2)));
    }
  } finally {
    await worker.close();
    await comms.close();
    await session.close();
  }
  return t;
}

async function callBlock() {
  const call = await sandboxedModule(moduleFile, { mode: 'call', spares: 2 });
  const t = { paced: [], backToBack: [], fresh: [] };
  try {
    for (let i = 0; i < WARMUP; i++) await call.api.add(1, 2);
    for (let i = 0; i < RUNS; i++) {
      await sleep(PACE_MS); // the forkserver has made its next spare
      t.paced.push(await time(() => call.api.add(1, 2)));
      if (i % Math.round(RUNS / FRESH_RUNS) === 0) t.fresh.push(await time(freshNode));
    }
    await sleep(PACE_MS);
    for (let i = 0; i < RUNS / 2; i++) t.backToBack.push(await time(() => call.api.add(1, 2)));
    // Throughput: the same number of calls by one caller, then by two at once.
    const N = Math.max(20, Math.round(RUNS / 3));
    await sleep(PACE_MS);
    const one = await time(async () => {
      for (let i = 0; i < N; i++) await call.api.add(1, 2);
    });
    await sleep(PACE_MS);
    const two = await time(() =>
      Promise.all(
        [0, 1].map(async () => {
          for (let i = 0; i < N / 2; i++) await call.api.add(1, 2);
        }),
      ),
    );
    return { ...t, one: N / (one / 1000), two: N / (two / 1000) };
  } finally {
    await call.close();
  }
}

export async function modulesBench() {
  const s = await sessionBlock();
  const c = await callBlock();
  const rec = (name, xs, q, peer, peerXs, goal) => ({
    name: `${name}, p${q * 100}`,
    value: pct(xs, q),
    unit: 'ms',
    peer,
    peerValue: pct(peerXs, q),
    ...(goal ? { goal } : {}),
  });
  const call = "'call' mode (fresh sandboxed child per call), a spare ready";
  return [
    rec(call, c.paced, 0.5, 'fresh node per call', c.fresh, '<= 2 ms, <= 0.033× (30× faster)'),
    rec(call, c.paced, 0.99, 'fresh node per call', c.fresh),
    rec("'call' mode, calls back to back", c.backToBack, 0.5, 'fresh node per call', c.fresh),
    rec("'session' mode round trip", s.session, 0.5, 'worker_threads MessagePort round trip', s.worker, '<= 0.1 ms'),
    rec("'session' mode round trip", s.session, 0.99, 'worker_threads MessagePort round trip', s.worker),
    rec("'session' mode round trip", s.session, 0.5, 'raw Comms round trip, unsandboxed node child', s.comms),
    rec("'session' mode round trip", s.session, 0.5, 'in-process call', s.inproc),
    {
      name: "'call' mode throughput, 2 callers (calls/s)",
      value: c.two,
      unit: 'calls/s',
      peer: '1 caller',
      peerValue: c.one,
      goal: '>= 1.5× on 2 cores',
    },
  ];
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  for (const r of await modulesBench()) console.log(JSON.stringify(r));
}
