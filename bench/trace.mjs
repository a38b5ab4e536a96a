// The per-stage timeline of one sandbox (Executor option trace): /bin/true under the same full
// sandbox and policy as the spawn section, on demand and from a spawn-pool slot, RUNS times each
// after a warm-up. `node bench/trace.mjs [runs]` prints the median µs each stage took (the table
// in docs/architecture.md); in `pnpm bench` the figure is what tracing itself costs: a traced
// sandbox's walltime against an untraced one, interleaved in the same run.
import { Executor, PolicyBuilder, Sandbox, setSpawnPool, spawnPoolStats } from '@sbx/executor';

const TRUE = '/bin/true';
const WARMUP = 20;

function policy() {
  const b = new PolicyBuilder().allowDynamicStartup().allowExit();
  b.addLibrariesForBinary(TRUE);
  return b.build();
}

async function once(p, { trace, spawnPool }) {
  const sandbox = new Sandbox(new Executor(TRUE, ['true'], { stdio: 'ignore', trace, spawnPool }), p);
  const t0 = performance.now();
  const result = await sandbox.run();
  const ms = performance.now() - t0;
  if (result.status !== 'OK') throw new Error(`bench trace: ${result}`);
  return { ms, timeline: sandbox.timeline };
}

async function poolReady() {
  for (let i = 0; i < 1000 && (await spawnPoolStats()).ready < 1; i++) await new Promise((r) => setTimeout(r, 2));
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.floor(s.length / 2)] : Number.NaN;
};

/** Median µs per stage (by name, in the order of the first run) over `runs` traced sandboxes. */
export async function stageTable(runs, spawnPool) {
  const p = policy();
  const took = new Map();
  for (let i = 0; i < WARMUP + runs; i++) {
    if (spawnPool) await poolReady();
    const { timeline } = await once(p, { trace: true, spawnPool });
    if (i < WARMUP) continue;
    for (const s of timeline) {
      if (!took.has(s.stage)) took.set(s.stage, { by: s.by, us: [] });
      took.get(s.stage).us.push(s.tookUs);
    }
  }
  return [...took].map(([stage, { by, us }]) => ({ stage, by, us: median(us) }));
}

/** pnpm bench: the cost of tracing, traced vs untraced walltime (interleaved, on demand). */
export async function traceBench(runs = 200) {
  const p = policy();
  const traced = [];
  const plain = [];
  for (let i = 0; i < WARMUP + runs; i++) {
    const a = await once(p, { trace: true, spawnPool: false });
    const b = await once(p, { trace: false, spawnPool: false });
    if (i < WARMUP) continue;
    traced.push(a.ms);
    plain.push(b.ms);
  }
  return [
    {
      name: 'traced sandbox /bin/true p50 (Executor trace: true)',
      value: median(traced),
      unit: 'ms',
      peer: 'the same, untraced',
      peerValue: median(plain),
    },
  ];
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const runs = Number(process.argv[2] ?? 200);
  const demand = await stageTable(runs, false);
  setSpawnPool({ size: 2 });
  const pooled = await stageTable(runs, true);
  setSpawnPool({ size: 0 });
  const names = [...new Set([...demand.map((s) => s.stage), ...pooled.map((s) => s.stage)])];
  const at = (t, n) => t.find((s) => s.stage === n);
  console.log(`| stage | by | on demand, µs | pool slot, µs |\n|---|---|---:|---:|`);
  for (const n of names) {
    const d = at(demand, n);
    const q = at(pooled, n);
    console.log(`| ${n} | ${(d ?? q).by} | ${d ? d.us.toFixed(0) : '–'} | ${q ? q.us.toFixed(0) : '–'} |`);
  }
  const total = (t) => t.reduce((a, s) => a + s.us, 0);
  console.log(`| **sum of medians** | | ${total(demand).toFixed(0)} | ${total(pooled).toFixed(0)} |`);
}
