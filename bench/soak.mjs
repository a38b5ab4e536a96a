// Leak and load soak: many /bin/true sandboxes, one after another and then all at once, and the
// executor's resources before and after. Used two ways:
//   node bench/soak.mjs [SEQUENTIAL] [CONCURRENT]   the full soak (default 10000 and 200), prints
//                                                  the figures (add --json for one JSON line)
//   test/soak.test.ts                              a shorter one (runSoak) with assertions
// What is measured, after a warm-up and again after the load (once things settled):
//   the executor's open fds and threads, its RSS, heap (after a full GC) and ArrayBuffer memory,
//   the forkserver's open fds and bookkeeping entries (requests, waiters), the executor's
//   descendant processes (the forkserver and any sandbox process still around, zombies counted
//   apart), and this executor's per-sandbox cgroups left under the delegated cgroup base (when
//   there is one).
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import v8 from 'node:v8';
import vm from 'node:vm';
import { Executor, PolicyBuilder, Sandbox } from '@sbx/executor';

const TRUE = '/bin/true';

function policy() {
  const b = new PolicyBuilder().allowDynamicStartup().allowExit();
  for (const d of ['/usr', '/bin', '/lib', '/lib64']) if (existsSync(d)) b.addDirectory(d);
  b.addDirectory('/proc');
  b.addLibrariesForBinary(TRUE);
  return b.build();
}

async function runTrue(p) {
  const sandbox = new Sandbox(new Executor(TRUE, ['true'], { stdio: 'ignore', limits: { walltime: 30 } }), p);
  const result = await sandbox.run();
  if (result.status !== 'OK' || result.exitCode !== 0)
    throw new Error(`soak: /bin/true did not succeed: ${result.toString()}`);
}

function fdCount(pid = 'self') {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return -1;
  }
}

/** fd -> what it is, for the report of any fd that appeared. */
function fdTargets() {
  const out = {};
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      out[fd] = readlinkSync(`/proc/self/fd/${fd}`);
    } catch {
      // the directory's own fd, closed by now
    }
  }
  return out;
}

function threadCount() {
  return Number(/^Threads:\s+(\d+)/m.exec(readFileSync('/proc/self/status', 'utf8'))[1]);
}

/** pid -> { ppid, state, comm } for every process we can read. */
function processTable() {
  const table = new Map();
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      const close = stat.lastIndexOf(')');
      const [state, ppid] = stat.slice(close + 2).split(' ');
      table.set(Number(p), { ppid: Number(ppid), state, comm: stat.slice(stat.indexOf('(') + 1, close) });
    } catch {
      // gone meanwhile
    }
  }
  return table;
}

/** The executor's descendants: [{ pid, state, comm }]. */
function descendants() {
  const table = processTable();
  const children = new Map();
  for (const [pid, p] of table) {
    if (!children.has(p.ppid)) children.set(p.ppid, []);
    children.get(p.ppid).push(pid);
  }
  const out = [];
  const queue = [...(children.get(process.pid) ?? [])];
  while (queue.length) {
    const pid = queue.shift();
    out.push({ pid, ...table.get(pid) });
    queue.push(...(children.get(pid) ?? []));
  }
  return out;
}

/** Entries in the executor's forkserver bookkeeping (its Maps and Sets: requests in flight, exit
 *  waiters, early exits, death waiters): 0 when no sandbox is running. */
async function forkserverEntries() {
  try {
    const { ForkServer } = await import('../packages/executor/dist/forkserver/global.js');
    let n = 0;
    for (const v of Object.values(ForkServer.shared())) if (v instanceof Map || v instanceof Set) n += v.size;
    return n;
  } catch {
    return null;
  }
}

async function cgroupDirs() {
  try {
    const { delegatedCgroupBase } = await import('../packages/executor/dist/sandbox/cgroup.js');
    const base = delegatedCgroupBase();
    if (!base) return null;
    // Ours only: other executors on the host (parallel test workers) make theirs in the same base.
    return readdirSync(base, { withFileTypes: true }).filter(
      (d) => d.isDirectory() && d.name.startsWith(`sbx-${process.pid}-`),
    ).length;
  } catch {
    return null;
  }
}

const settle = (ms) => new Promise((r) => setTimeout(r, ms));

/** A full GC where possible: --expose-gc, or switched on here (heap figures then mean retention). */
function gcFunction() {
  if (globalThis.gc) return globalThis.gc;
  try {
    v8.setFlagsFromString('--expose-gc');
    return vm.runInNewContext('gc');
  } catch {
    return null;
  }
}
const gc = gcFunction();

async function snapshot() {
  gc?.();
  await settle(200);
  gc?.();
  const procs = descendants();
  const forkserver = procs.find((p) => p.comm === 'sbx-forkserver' && p.ppid === process.pid);
  return {
    fds: fdCount(),
    fdTargets: fdTargets(),
    threads: threadCount(),
    rssMiB: Math.round((process.memoryUsage().rss / 2 ** 20) * 10) / 10,
    heapMiB: Math.round((process.memoryUsage().heapUsed / 2 ** 20) * 100) / 100,
    arrayBuffersMiB: Math.round((process.memoryUsage().arrayBuffers / 2 ** 20) * 100) / 100,
    forkserverFds: forkserver ? fdCount(forkserver.pid) : -1,
    forkserverEntries: await forkserverEntries(),
    descendants: procs.filter((p) => p.state !== 'Z').length,
    zombies: procs.filter((p) => p.state === 'Z').length,
    cgroups: await cgroupDirs(),
  };
}

/**
 * Runs the soak and returns the figures: { before, afterSequential, after, sequential: { runs,
 * seconds, perSecond }, concurrent: { runs, seconds, perSecond } }.
 */
export async function runSoak({ sequential = 10_000, concurrent = 200, warmup = 20, onProgress } = {}) {
  const p = policy();
  for (let i = 0; i < warmup; i++) await runTrue(p);
  const before = await snapshot();

  let t0 = performance.now();
  for (let i = 0; i < sequential; i++) {
    await runTrue(p);
    if (onProgress && (i + 1) % 1000 === 0) onProgress(`sequential ${i + 1}/${sequential}`);
  }
  const seqSeconds = (performance.now() - t0) / 1000;
  const afterSequential = await snapshot();

  t0 = performance.now();
  await Promise.all(Array.from({ length: concurrent }, () => runTrue(p)));
  const conSeconds = (performance.now() - t0) / 1000;
  const after = await snapshot();

  return {
    before,
    afterSequential,
    after,
    sequential: { runs: sequential, seconds: round(seqSeconds), perSecond: round(sequential / seqSeconds) },
    concurrent: { runs: concurrent, seconds: round(conSeconds), perSecond: round(concurrent / conSeconds) },
  };
}

function round(x) {
  return Math.round(x * 100) / 100;
}

function table(f) {
  const rows = [
    ['executor fds', 'fds'],
    ['executor threads', 'threads'],
    ['executor RSS (MiB)', 'rssMiB'],
    ['executor heap used after GC (MiB)', 'heapMiB'],
    ['executor ArrayBuffers (MiB)', 'arrayBuffersMiB'],
    ['forkserver fds', 'forkserverFds'],
    ['forkserver bookkeeping entries', 'forkserverEntries'],
    ['descendant processes', 'descendants'],
    ['zombies', 'zombies'],
    ['sandbox cgroups left (ours)', 'cgroups'],
  ];
  const lines = [
    `| | before | after ${f.sequential.runs} sequential | after ${f.concurrent.runs} concurrent |`,
    '|---|---|---|---|',
  ];
  for (const [label, key] of rows)
    lines.push(
      `| ${label} | ${f.before[key] ?? 'n/a'} | ${f.afterSequential[key] ?? 'n/a'} | ${f.after[key] ?? 'n/a'} |`,
    );
  return lines.join('\n');
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const args = process.argv.slice(2).filter((a) => !a.startsWith('--'));
  const json = process.argv.includes('--json');
  const sequential = Number(args[0] ?? 10_000);
  const concurrent = Number(args[1] ?? 200);
  const f = await runSoak({
    sequential,
    concurrent,
    onProgress: json ? undefined : (m) => console.error(`soak: ${m}`),
  });
  if (json) console.log(JSON.stringify(f));
  else {
    console.log(
      `sequential: ${f.sequential.runs} sandboxes in ${f.sequential.seconds} s (${f.sequential.perSecond}/s)`,
    );
    console.log(
      `concurrent: ${f.concurrent.runs} sandboxes at once in ${f.concurrent.seconds} s (${f.concurrent.perSecond}/s)`,
    );
    console.log(table(f));
    const added = Object.entries(f.after.fdTargets).filter(([fd, t]) => f.before.fdTargets[fd] !== t);
    if (added.length) console.log(`fds that appeared: ${added.map(([fd, t]) => `${fd} -> ${t}`).join(', ')}`);
  }
  process.exit(0);
}
