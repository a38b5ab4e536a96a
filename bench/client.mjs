// sandboxMeHere() latency: the time from the call to its return in a Node sandboxee (policy
// transfer, NO_NEW_PRIVS, the TSYNC install on every thread, the listener hand-off and the
// go-ahead), measured inside the sandboxee with process.hrtime around the call. One executor
// process starts the sandboxes one after another (the policy compile is warm after the first).
//   prepared: the program called Client.prepare() while it initialised (stdout, stderr, the
//             Comms codec and the addon set up), as the docs advise;
//   cold:     the call does that preparation itself (Node's lazy stdout setup, msgpackr's load,
//             the addon's load).
// Peers: the budgets of issue #21 (prepared 0.3 ms, cold 5 ms p50): a ratio of at most 1 meets them.
import { Executor, PolicyBuilder, Sandbox } from '@sbx/executor';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const WARMUP = 5;
const RUNS = 50;
const COLD_RUNS = 15;

const script = (prepare) => `
import { Client } from '@sbx/client';
${prepare ? 'Client.prepare();' : 'Client.kernelSupport(); // loads the addon'}
const t0 = process.hrtime.bigint();
Client.sandboxMeHere();
const t1 = process.hrtime.bigint();
process.stdout.write(String(Number(t1 - t0) / 1000));
`;

function policy() {
  const b = new PolicyBuilder().allowNodeRuntime({ openFiles: false });
  b.addFile(process.execPath).addLibrariesForBinary(process.execPath).addDirectory(root).addDirectory('/proc');
  for (const f of ['/dev/null', '/dev/urandom']) b.addFile(f, { writable: true });
  return b.build();
}

async function once(p, prepare) {
  const ex = new Executor(process.execPath, [process.execPath, '--input-type=module', '-e', script(prepare)], {
    enableSandboxBeforeExec: false,
    stdio: ['ignore', 'pipe', 'inherit'],
    cwd: root,
    env: { PATH: '/usr/bin:/bin' },
    limits: { walltime: 20 },
  });
  const sandbox = new Sandbox(ex, p);
  const result = sandbox.run();
  await sandbox.runAsync();
  let out = '';
  sandbox.stdout.on('data', (d) => (out += d));
  const [r] = await Promise.all([result, new Promise((res) => sandbox.stdout.on('end', res))]);
  const us = Number(out);
  if (r.status !== 'OK' || r.exitCode !== 0 || out === '' || !Number.isFinite(us))
    throw new Error(`bench client: the sandboxee failed: ${r} (stdout "${out}")`);
  return us;
}

export async function clientBench() {
  const p = policy();
  for (let i = 0; i < WARMUP; i++) await once(p, true);
  const prepared = [];
  const cold = [];
  for (let i = 0; i < RUNS; i++) {
    prepared.push(await once(p, true));
    if (i < COLD_RUNS) cold.push(await once(p, false));
  }
  const preparedPeer = 'goal budget (issue #21: prepared ≤ 0.3 ms p50)';
  const coldPeer = 'goal budget (issue #21: cold ≤ 5 ms p50)';
  return [
    {
      name: 'sandboxMeHere() in Node, call to return, prepared, p50',
      unit: 'µs',
      value: quantile(prepared, 0.5),
      peer: preparedPeer,
      peerValue: 300,
      goal: '<= 1×',
    },
    {
      name: 'sandboxMeHere() in Node, call to return, prepared, p90',
      unit: 'µs',
      value: quantile(prepared, 0.9),
      peer: preparedPeer,
      peerValue: 300,
    },
    {
      name: 'sandboxMeHere() in Node, call to return, cold (stdio, codec and addon set up in the call), p50',
      unit: 'µs',
      value: quantile(cold, 0.5),
      peer: coldPeer,
      peerValue: 5000,
      goal: '<= 1×',
    },
  ];
}

function quantile(xs, q) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  for (const r of await clientBench()) console.log(`${r.name}: ${r.value.toFixed(1)} ${r.unit}`);
}
