// Sandboxed modules (@sbx/modules): per-call latency of a small call (add(1, 2) of
// test/fixtures/modules/sample.mjs), in one run, interleaved:
//   call      sandboxedModule(..., { mode: 'call', spares: 2 }): a fresh sandboxed child per call
//   session   the same module in 'session' mode: one child, a round trip per call
//   in-proc   the function called in this process (await)
//   worker    a worker_threads Worker that imported the module, postMessage round trip
//   fresh     `node` spawned per call: imports the module, calls, prints, exits
// and the throughput of 'call' mode with two callers against one (scaling with cores).
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { sandboxedModule } from '@sbx/modules';

const repo = join(import.meta.dirname, '..');
const moduleFile = join(repo, 'test', 'fixtures', 'modules', 'sample.mjs');
const RUNS = Number(process.env.SBX_BENCH_MODULE_RUNS ?? 150);
const FRESH_RUNS = Math.max(10, Math.round(RUNS / 6));
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

export async function modulesBench() {
  const call = await sandboxedModule(moduleFile, { mode: 'call', spares: 2 });
  const session = await sandboxedModule(moduleFile, { mode: 'session', spares: 1 });
  const mod = await import(pathToFileURL(moduleFile).href);
  const worker = new Worker(join(repo, 'bench', 'fixtures', 'modules-worker.mjs'), {
    workerData: { module: pathToFileURL(moduleFile).href },
  });
  const workerCall = (fn, ...args) =>
    new Promise((resolve) => {
      worker.once('message', resolve);
      worker.postMessage({ fn, args });
    });
  const t = { call: [], session: [], inproc: [], worker: [], fresh: [] };
  try {
    for (let i = 0; i < WARMUP; i++) {
      await call.api.add(1, 2);
      await session.api.add(1, 2);
      await workerCall('add', 1, 2);
    }
    for (let i = 0; i < RUNS; i++) {
      t.call.push(await time(() => call.api.add(1, 2)));
      t.session.push(await time(() => session.api.add(1, 2)));
      t.inproc.push(await time(async () => mod.add(1, 2)));
      t.worker.push(await time(() => workerCall('add', 1, 2)));
      if (i % Math.round(RUNS / FRESH_RUNS) === 0) t.fresh.push(await time(freshNode));
    }
    // Throughput in 'call' mode: the same number of calls by one caller, then by two at once.
    const N = Math.max(20, Math.round(RUNS / 3));
    const one = await time(async () => {
      for (let i = 0; i < N; i++) await call.api.add(1, 2);
    });
    const two = await time(() =>
      Promise.all(
        [0, 1].map(async () => {
          for (let i = 0; i < N / 2; i++) await call.api.add(1, 2);
        }),
      ),
    );
    const rec = (name, xs, q, peer, peerXs, goal) => ({
      name: `${name}, p${q * 100}`,
      value: pct(xs, q),
      unit: 'ms',
      peer,
      peerValue: pct(peerXs, q),
      ...(goal ? { goal } : {}),
    });
    return [
      rec(
        "'call' mode (fresh sandboxed child per call)",
        t.call,
        0.5,
        'fresh node per call',
        t.fresh,
        '<= 2 ms, <= 0.033× (30× faster)',
      ),
      rec("'call' mode (fresh sandboxed child per call)", t.call, 0.99, 'fresh node per call', t.fresh),
      rec("'session' mode round trip", t.session, 0.5, 'worker_threads round trip', t.worker, '<= 0.1 ms'),
      rec("'session' mode round trip", t.session, 0.99, 'worker_threads round trip', t.worker),
      rec("'session' mode round trip", t.session, 0.5, 'in-process call', t.inproc),
      rec("'call' mode", t.call, 0.5, 'worker_threads round trip', t.worker),
      {
        name: "'call' mode throughput, 2 callers (calls/s)",
        value: N / (two / 1000),
        unit: 'calls/s',
        peer: '1 caller',
        peerValue: N / (one / 1000),
        goal: '>= 1.5× on 2 cores',
      },
    ];
  } finally {
    await worker.terminate();
    await call.close();
    await session.close();
  }
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  for (const r of await modulesBench()) console.log(JSON.stringify(r));
}
