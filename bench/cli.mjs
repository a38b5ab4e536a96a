// The whole-process cost of the CLI: `sbx run -- /bin/true` (Node start, module load, forkserver
// start, one sandbox, exit) against `node -e 0` (Node start and exit), both spawned from here and
// timed to exit, interleaved. Afterwards no sbx-forkserver or sbx-init of those runs may be left.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

const sbxBin = join(import.meta.dirname, '..', 'packages', 'executor', 'bin', 'sbx.js');
const WARMUP = 3;
const RUNS = 30;
const TIMEOUT_MS = 20_000;
/** Marks the environment of every process these runs start (the forkserver and its inits inherit it). */
const MARK = `SBX_BENCH_CLI=${randomBytes(6).toString('hex')}`;

function timeProcess(args) {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const [k, v] = MARK.split('=');
    const child = spawn(process.execPath, args, {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, [k]: v },
    });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`node ${args.join(' ')}: no exit within ${TIMEOUT_MS} ms`));
    }, TIMEOUT_MS);
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.once('exit', (code, signal) => {
      const ms = performance.now() - t0;
      clearTimeout(timer);
      if (code === 0) resolve(ms);
      else
        reject(
          new Error(
            `node ${args.join(' ')}: exited with ${signal ?? `code ${code}`}${stderr ? `: ${stderr.trim()}` : ''}`,
          ),
        );
    });
  });
}

/** Pids of live sbx-forkserver / sbx-init processes that carry this run's mark. */
function leftovers() {
  const found = [];
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      const comm = readFileSync(`/proc/${p}/comm`, 'utf8').trim();
      const cmdline = readFileSync(`/proc/${p}/cmdline`, 'utf8');
      if (!/sbx-forkserver|sbx-init/.test(comm + cmdline)) continue;
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      if (stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')) continue; // a zombie holds nothing
      if (readFileSync(`/proc/${p}/environ`, 'utf8').split('\0').includes(MARK)) found.push(`${p} (${comm})`);
    } catch {
      // gone meanwhile, or not ours to read
    }
  }
  return found;
}

export async function cliBench() {
  const sbxArgs = [sbxBin, 'run', '--', '/bin/true'];
  const nodeArgs = ['-e', '0'];
  for (let i = 0; i < WARMUP; i++) {
    await timeProcess(sbxArgs);
    await timeProcess(nodeArgs);
  }
  const sbx = [];
  const node = [];
  for (let i = 0; i < RUNS; i++) {
    sbx.push(await timeProcess(sbxArgs));
    node.push(await timeProcess(nodeArgs));
  }

  // The forkserver goes when sbx exits; give it a moment, then nothing of these runs may be left.
  let left = leftovers();
  for (let i = 0; i < 20 && left.length; i++) {
    await new Promise((r) => setTimeout(r, 50));
    left = leftovers();
  }
  if (left.length) {
    for (const entry of left) {
      try {
        process.kill(Number.parseInt(entry, 10), 'SIGKILL');
      } catch {
        // already gone
      }
    }
    throw new Error(`sbx run left processes behind after it exited (killed now): ${left.join(', ')}`);
  }

  return [
    {
      name: '`sbx run -- /bin/true`, whole process, median',
      unit: 'ms',
      value: median(sbx),
      peer: '`node -e 0`',
      peerValue: median(node),
      goal: '<= 1.5×',
    },
  ];
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}
