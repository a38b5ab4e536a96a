// Spawn latency: /bin/true from spawn to exit, in one run, interleaved:
//   sbx   a full sandbox (user, mount, pid, net, ipc, uts, cgroup namespaces; read-only /usr and the
//         merged-/usr links /bin, /lib, /lib64; its own /proc; the seccomp policy
//         allowDynamicStartup + allowExit + addLibrariesForBinary('/bin/true'), installed before
//         exec with the monitor's listener), stdio 'ignore', new Executor + Sandbox to Result;
//   sbx-landlock  the same policy with isolation 'landlock' (no namespace: Landlock rules and
//         scopes, a subreaper init, an unprivileged uid as root; skipped without Landlock ABI 6);
//   cp    child_process.spawn('/bin/true') to its 'exit' event (no sandbox);
//   bwrap bubblewrap with a comparable view, spawned the same way as cp (skipped if not installed).
//   pool  the same sandbox served by a spawn-pool slot (setSpawnPool): the pool is full before each
//         timed request ("idle pool"). The pool stays on for the whole section: the other sbx
//         kinds run with spawnPool: false (on demand, the slots untouched), so that no slot is
//         killed, and no network namespace torn down, while something is timed.
// Then the forkserver's own floor, from Node, in a block of its own (interleaved with cp): the
// same namespaces and mount view for /bin/true, but no policy, monitor, setup socket, stdio or
// Result: SPAWN to EXITED over the executor's channel (the research's M5), pool vs on demand.
// Then throughput (sandboxes per second) of sbx and bwrap: one after another, and 2 at a time (two
// loops side by side, each starting its next sandbox when its last one ended). Last, python3 -c
// pass 2 and 4 at a time through the pool (the code-runner example's python policy), sustained
// (no pause for the refill), against child_process.spawn at the same width.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { Executor, PolicyBuilder, Sandbox, setSpawnPool, spawnPoolStats } from '@sbx/executor';

const TRUE = '/bin/true';
const WARMUP = 20;
const RUNS = 200;
const THROUGHPUT_RUNS = 150;
/** Any single spawn taking longer than this is a failure, not a data point. */
const TIMEOUT_MS = 10_000;

const BWRAP_ARGS = [
  '--unshare-all',
  '--die-with-parent',
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
  '--proc',
  '/proc',
  '--dev',
  '/dev',
  TRUE,
];

/** The sandbox policy. `libraries: false` leaves out addLibrariesForBinary (its files are inside /usr anyway). */
function sbxPolicy(libraries) {
  const b = new PolicyBuilder().allowDynamicStartup().allowExit();
  for (const d of ['/usr', '/bin', '/lib', '/lib64']) if (existsSync(d)) b.addDirectory(d);
  b.addDirectory('/proc');
  if (libraries) b.addLibrariesForBinary(TRUE);
  return b.build();
}

/** p, or a rejection after TIMEOUT_MS (then `onTimeout` ends what is still running). */
function withTimeout(p, what, onTimeout) {
  let timer;
  const t = new Promise((_, reject) => {
    timer = setTimeout(() => {
      onTimeout();
      reject(new Error(`${what} did not finish within ${TIMEOUT_MS} ms`));
    }, TIMEOUT_MS);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

async function runSbx(policy, isolation = 'namespaces', spawnPool = true) {
  const t0 = performance.now();
  const sandbox = new Sandbox(
    new Executor(TRUE, ['true'], { stdio: 'ignore', limits: { walltime: 10 }, isolation, spawnPool }),
    policy,
  );
  const result = await withTimeout(sandbox.run(), 'sbx sandbox of /bin/true', () => sandbox.kill());
  const ms = performance.now() - t0;
  if (result.status !== 'OK' || result.exitCode !== 0)
    throw new Error(`sbx: /bin/true did not succeed: ${result.toString()}`);
  return ms;
}

function runChild(cmd, args) {
  let child;
  return withTimeout(
    new Promise((resolve, reject) => {
      const t0 = performance.now();
      child = spawn(cmd, args, { stdio: 'ignore' });
      child.once('error', reject);
      child.once('exit', (code, signal) => {
        const ms = performance.now() - t0;
        if (code === 0) resolve(ms);
        else reject(new Error(`${cmd} ${args.join(' ')}: exited with ${signal ?? `code ${code}`}`));
      });
    }),
    `${cmd} ${args.join(' ')}`,
    () => child?.kill('SIGKILL'),
  );
}

const runCp = () => runChild(TRUE, []);

const POOL_SIZE = 4;

const { ForkServer } = await import(new URL('../packages/executor/dist/forkserver/global.js', import.meta.url));
const { OpList, Op, CloneFlag } = await import(
  new URL('../packages/executor/dist/forkserver/protocol.js', import.meta.url)
);
const { native } = await import('@sbx/client/internal');

function floorOps(noPool) {
  const root = process.getuid() === 0;
  const uid = root ? 65534 : process.getuid();
  const gid = root ? 65534 : process.getgid();
  const ns = Object.values(CloneFlag).reduce((a, f) => a | f, 0);
  const o = new OpList()
    .str(Op.ExecPath, TRUE)
    .str(Op.Arg, 'true')
    .str(Op.Env, 'PATH=/usr/bin:/bin')
    .u32(Op.Namespaces, ns);
  o.str(Op.Hostname, 'sbx').words(Op.IdMap, [1000, uid, 1000, gid]).bind('/usr', '/usr', 0);
  for (const d of ['bin', 'lib', 'lib64', 'sbin']) o.symlink(`usr/${d}`, `/${d}`);
  o.str(Op.Proc, '/proc');
  if (noPool) o.raw(Op.NoPool, Buffer.alloc(0));
  return o;
}

/** SPAWN to EXITED straight through the forkserver (no policy, no monitor). */
async function runFloor(noPool) {
  const fs = ForkServer.shared();
  const ops = floorOps(noPool);
  const t0 = performance.now();
  const { id, spawned } = await fs.spawn(ops);
  const exited = await fs.waitExit(id);
  const ms = performance.now() - t0;
  native().close(spawned.pidfd);
  if (exited.status !== 0)
    throw new Error(`bench spawn: the forkserver's /bin/true ended with status ${exited.status}`);
  return ms;
}

/** Waits (untimed) until the pool is full again. */
async function poolFull() {
  for (let i = 0; i < 2000; i++) {
    const s = await spawnPoolStats();
    if (s.ready >= s.size) return s;
    await new Promise((r) => setTimeout(r, 1));
  }
  throw new Error(`the spawn pool never filled: ${JSON.stringify(await spawnPoolStats())}`);
}

async function runPooled(policy) {
  const before = await poolFull();
  const ms = await runSbx(policy);
  const after = await spawnPoolStats();
  if (after.hits !== before.hits + 1)
    throw new Error(`bench spawn: a pooled request missed the pool (${JSON.stringify(after)})`);
  return ms;
}

/** On demand while the pool stays on (spawnPool: false: no slot used, no template change). */
const runOnDemand = (policy) => runSbx(policy, 'namespaces', false);
const runBwrap = () => runChild('bwrap', BWRAP_ARGS);

function hasBwrap() {
  const r = spawnSync('bwrap', BWRAP_ARGS, { stdio: 'ignore', timeout: TIMEOUT_MS });
  if (r.error?.code === 'ENOENT') {
    process.stderr.write('bench spawn: bwrap is not installed (apt-get install bubblewrap): its rows are skipped\n');
    return false;
  }
  if (r.error || r.status !== 0) {
    process.stderr.write(
      `bench spawn: bwrap does not work here (${r.error?.message ?? `exit ${r.status ?? r.signal}`}): its rows are skipped\n`,
    );
    return false;
  }
  return true;
}

/** The brief's policy if it runs here; the same without addLibrariesForBinary if only that fails. */
async function pickPolicy() {
  let full;
  try {
    full = sbxPolicy(true);
    await runSbx(full);
    return { policy: full, label: 'allowDynamicStartup+allowExit+addLibrariesForBinary' };
  } catch (err) {
    const fallback = sbxPolicy(false);
    await runSbx(fallback); // throws if the sandbox itself does not work
    process.stderr.write(
      `bench spawn: the policy with addLibrariesForBinary('/bin/true') fails (${err.message}); ` +
        'measuring without it (the libraries are inside the /usr bind)\n',
    );
    return { policy: fallback, label: 'allowDynamicStartup+allowExit, no addLibrariesForBinary' };
  }
}

export async function spawnBench() {
  setSpawnPool({ size: POOL_SIZE });
  const { policy, label } = await pickPolicy();
  const bwrap = hasBwrap();
  const landlock = await runSbx(policy, 'landlock', false).then(
    () => true,
    (err) => {
      process.stderr.write(
        `bench spawn: isolation 'landlock' does not run here (${err.message}): its rows are skipped\n`,
      );
      return false;
    },
  );
  const kinds = {
    sbx: () => runOnDemand(policy),
    pool: () => runPooled(policy),
    ...(landlock ? { ll: () => runSbx(policy, 'landlock', false) } : {}),
    cp: runCp,
    ...(bwrap ? { bwrap: runBwrap } : {}),
  };

  for (let i = 0; i < WARMUP; i++) for (const run of Object.values(kinds)) await run();
  const lat = Object.fromEntries(Object.keys(kinds).map((k) => [k, []]));
  // Interleaved: every kind sees the same machine state over the run.
  for (let i = 0; i < RUNS; i++) for (const [k, run] of Object.entries(kinds)) lat[k].push(await run());

  const tput = {};
  const tput2 = {};
  for (const k of ['sbx', ...(bwrap ? ['bwrap'] : [])]) {
    let t0 = performance.now();
    for (let i = 0; i < THROUGHPUT_RUNS; i++) await kinds[k]();
    tput[k] = THROUGHPUT_RUNS / ((performance.now() - t0) / 1000);
    // 2-way concurrent: two loops, each starting its next sandbox when its last one ended.
    t0 = performance.now();
    const loop = async () => {
      for (let i = 0; i < THROUGHPUT_RUNS / 2; i++) await kinds[k]();
    };
    await Promise.all([loop(), loop()]);
    tput2[k] = THROUGHPUT_RUNS / ((performance.now() - t0) / 1000);
  }

  // The forkserver's floor (a layout of its own: the pool follows it for this block).
  const floorKinds = {
    fsPool: async () => {
      await poolFull();
      return runFloor(false);
    },
    fsDemand: () => runFloor(true),
    cp: runCp,
  };
  await runFloor(false);
  for (let i = 0; i < WARMUP; i++) for (const run of Object.values(floorKinds)) await run();
  const floor = { fsPool: [], fsDemand: [], cp: [] };
  for (let i = 0; i < RUNS; i++) for (const [k, run] of Object.entries(floorKinds)) floor[k].push(await run());
  // Back to back through the forkserver alone, pool vs on demand (requests per second).
  const floorTput = {};
  for (const [k, noPool] of [
    ['pool', false],
    ['demand', true],
  ]) {
    await poolFull();
    const s0 = await spawnPoolStats();
    const t0 = performance.now();
    for (let i = 0; i < THROUGHPUT_RUNS; i++) await runFloor(noPool);
    floorTput[k] = THROUGHPUT_RUNS / ((performance.now() - t0) / 1000);
    floorTput[`${k}Hits`] = (await spawnPoolStats()).hits - s0.hits;
  }
  await runSbx(policy); // the pool back on the SDK's layout

  // Back to back through the pool: the refill competes with the requests (2 vCPUs here).
  const poolTput = {};
  for (const [label, width] of [
    ['seq', 1],
    ['par', 2],
  ]) {
    await poolFull();
    const s0 = await spawnPoolStats();
    const t0 = performance.now();
    const loop = async () => {
      for (let i = 0; i < THROUGHPUT_RUNS / width; i++) await runSbx(policy);
    };
    await Promise.all(Array.from({ length: width }, loop));
    poolTput[label] = THROUGHPUT_RUNS / ((performance.now() - t0) / 1000);
    const s1 = await spawnPoolStats();
    poolTput[`${label}Hits`] = s1.hits - s0.hits;
  }

  // python3 -c pass, 2 and 4 at a time, sustained: the pool (the code-runner example's python
  // policy) against plain child_process.spawn, the two taking turns in rounds.
  const py = await pythonThroughput();
  setSpawnPool({ size: 0 });

  const p = (k, q) => quantile(lat[k], q);
  const sbxName = `sbx full sandbox /bin/true (${label})`;
  const cpName = 'child_process.spawn(/bin/true), no sandbox';
  const bwName = 'bwrap --unshare-all, ro /usr, --proc, --dev';
  const rows = [
    {
      name: `${sbxName}, p50`,
      unit: 'ms',
      value: p('sbx', 0.5),
      peer: cpName,
      peerValue: p('cp', 0.5),
      goal: '<= 1.2×',
    },
    { name: `${sbxName}, p90`, unit: 'ms', value: p('sbx', 0.9), peer: cpName, peerValue: p('cp', 0.9) },
  ];
  const poolName = `sbx full sandbox /bin/true from the spawn pool (size ${POOL_SIZE}, idle pool)`;
  rows.push(
    {
      name: `${poolName}, p50`,
      unit: 'ms',
      value: p('pool', 0.5),
      peer: cpName,
      peerValue: p('cp', 0.5),
      goal: '<= 0.7×',
    },
    { name: `${poolName}, p90`, unit: 'ms', value: p('pool', 0.9), peer: cpName, peerValue: p('cp', 0.9) },
    {
      name: `${poolName}, p50`,
      unit: 'ms',
      value: p('pool', 0.5),
      peer: `${sbxName} (on demand)`,
      peerValue: p('sbx', 0.5),
    },
    {
      name: `${poolName}, p90`,
      unit: 'ms',
      value: p('pool', 0.9),
      peer: `${sbxName} (on demand)`,
      peerValue: p('sbx', 0.9),
    },
    {
      name: `sequential sandboxes per second through the pool (${poolTput.seqHits}/${THROUGHPUT_RUNS} hits)`,
      unit: '/s',
      value: poolTput.seq,
      peer: 'on demand',
      peerValue: tput.sbx,
    },
    {
      name: `sandboxes per second through the pool, 2 at a time (${poolTput.parHits}/${THROUGHPUT_RUNS} hits)`,
      unit: '/s',
      value: poolTput.par,
      peer: 'on demand',
      peerValue: tput2.sbx,
    },
  );
  const fq = (k, q) => quantile(floor[k], q);
  const floorName = `forkserver alone, SPAWN to EXITED from Node, /bin/true, no policy, from the pool (size ${POOL_SIZE}, idle)`;
  rows.push(
    {
      name: `${floorName}, p50`,
      unit: 'ms',
      value: fq('fsPool', 0.5),
      peer: `${cpName} (same block)`,
      peerValue: fq('cp', 0.5),
      goal: '<= 0.7×',
    },
    {
      name: `${floorName}, p90`,
      unit: 'ms',
      value: fq('fsPool', 0.9),
      peer: `${cpName} (same block)`,
      peerValue: fq('cp', 0.9),
    },
    {
      name: `${floorName}, p50`,
      unit: 'ms',
      value: fq('fsPool', 0.5),
      peer: 'the same on demand',
      peerValue: fq('fsDemand', 0.5),
    },
    {
      name: `${floorName}, p90`,
      unit: 'ms',
      value: fq('fsPool', 0.9),
      peer: 'the same on demand',
      peerValue: fq('fsDemand', 0.9),
    },
    {
      name: `forkserver alone back to back through the pool (${floorTput.poolHits}/${THROUGHPUT_RUNS} hits)`,
      unit: '/s',
      value: floorTput.pool,
      peer: 'the same on demand',
      peerValue: floorTput.demand,
    },
  );
  if (landlock) {
    const llName = `sbx isolation 'landlock' /bin/true (${label})`;
    rows.push(
      {
        name: `${llName}, p50`,
        unit: 'ms',
        value: p('ll', 0.5),
        peer: cpName,
        peerValue: p('cp', 0.5),
        goal: '<= 1.0×',
      },
      { name: `${llName}, p90`, unit: 'ms', value: p('ll', 0.9), peer: cpName, peerValue: p('cp', 0.9) },
      {
        name: `${llName}, p50`,
        unit: 'ms',
        value: p('ll', 0.5),
        peer: `${sbxName} (namespaces)`,
        peerValue: p('sbx', 0.5),
      },
    );
  }
  if (bwrap) {
    rows.push(
      {
        name: `${sbxName}, p50`,
        unit: 'ms',
        value: p('sbx', 0.5),
        peer: bwName,
        peerValue: p('bwrap', 0.5),
        goal: '<= 0.5×',
      },
      { name: `${sbxName}, p90`, unit: 'ms', value: p('sbx', 0.9), peer: bwName, peerValue: p('bwrap', 0.9) },
      {
        name: 'sequential sandboxes of /bin/true per second',
        unit: '/s',
        value: tput.sbx,
        peer: bwName,
        peerValue: tput.bwrap,
      },
      {
        name: 'sandboxes of /bin/true per second, 2 at a time',
        unit: '/s',
        value: tput2.sbx,
        peer: bwName,
        peerValue: tput2.bwrap,
      },
    );
  }
  for (const w of PY_WIDTHS)
    rows.push({
      name: `python3 -c pass per second, ${w} at a time, sustained, through the pool (${py[w].hits}/${py[w].n} hits)`,
      unit: '/s',
      value: py[w].sbx,
      peer: `child_process.spawn(python3 -c pass), no sandbox, ${w} at a time`,
      peerValue: py[w].cp,
      goal: '>= 0.9×',
    });
  return rows;
}

const PY_WIDTHS = [2, 4];
const PY_RUNS = 96;
const PY_ROUNDS = 4;
const PY_ARGS = ['-I', '-S', '-c', 'pass'];

async function runPython(pyPolicy) {
  const sandbox = new Sandbox(
    new Executor('/usr/bin/python3', ['python3', ...PY_ARGS], { stdio: 'ignore', limits: { walltime: 10 } }),
    pyPolicy,
  );
  const result = await withTimeout(sandbox.run(), 'sbx sandbox of python3', () => sandbox.kill());
  if (result.status !== 'OK' || result.exitCode !== 0)
    throw new Error(`sbx: python3 -c pass did not succeed: ${result.toString()}`);
}

/** Per width: sandboxes per second through the pool and child_process spawns per second. */
async function pythonThroughput() {
  const { policies } = await import(new URL('../examples/code-runner/policies.mjs', import.meta.url));
  const pyPolicy = policies.python;
  const kinds = { sbx: () => runPython(pyPolicy), cp: () => runChild('/usr/bin/python3', PY_ARGS) };
  for (let i = 0; i < 8; i++) for (const run of Object.values(kinds)) await run(); // warm-up, and the template
  const out = {};
  for (const w of PY_WIDTHS) {
    await poolFull();
    const s0 = await spawnPoolStats();
    const took = { sbx: 0, cp: 0 };
    for (let round = 0; round < PY_ROUNDS; round++) {
      for (const [k, run] of Object.entries(kinds)) {
        const per = PY_RUNS / PY_ROUNDS / w;
        const t0 = performance.now();
        await Promise.all(
          Array.from({ length: w }, async () => {
            for (let i = 0; i < per; i++) await run();
          }),
        );
        took[k] += performance.now() - t0;
      }
    }
    out[w] = {
      sbx: PY_RUNS / (took.sbx / 1000),
      cp: PY_RUNS / (took.cp / 1000),
      hits: (await spawnPoolStats()).hits - s0.hits,
      n: PY_RUNS,
    };
  }
  return out;
}

function quantile(xs, q) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
}
