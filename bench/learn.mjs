// Learning vs enforcing: the same program, in the same sandbox view, run under the learning
// policy (every syscall outside the base set goes to the monitor, which answers CONTINUE and
// records new facts) and under the policy learned from it (enforcing, no notifications but the
// exec). Walltime from spawn to Result, median of interleaved runs; the ratio is the slowdown.
import { Executor, Sandbox } from '@sbx/executor';
import { enforcingPolicy, learnPolicyFile, learningPolicy } from '../packages/executor/dist/learn/learn.js';
import { encodeLearnTable } from '../packages/executor/dist/learn/table.js';
import { LearnedFacts } from '../packages/executor/dist/learn/facts-set.js';
import { defaultView } from '../packages/executor/dist/learn/view.js';

const RUNS = 15;
const PROGRAMS = [
  ['ls -la /usr/bin', '/bin/ls', ['ls', '-la', '/usr/bin']],
  ['sh -c: 30 x cat | wc', '/bin/sh', ['sh', '-c', 'for i in $(seq 30); do cat /etc/passwd | wc -l; done']],
  [
    'node -e (read a file, JSON)',
    process.execPath,
    [
      'node',
      '-e',
      'process.stdout.write(JSON.stringify(require("fs").readFileSync("/etc/passwd","utf8").split("\\n").length))',
    ],
  ],
];
const quiet = { stdio: ['ignore', 'ignore', 'ignore'] };

async function timed(path, argv, policy, learning) {
  const sandbox = new Sandbox(new Executor(path, argv, quiet), policy);
  if (learning) {
    const facts = new LearnedFacts(policy.arch);
    sandbox.learning = {
      table: (f) => encodeLearnTable(f, policy.arch),
      onEvent: (e) => e.type === 'learn' && facts.addFromRegisters(e.nr, e.args),
    };
  }
  const t0 = performance.now();
  const r = await sandbox.run();
  if (r.status !== 'OK') throw new Error(`bench learn: ${argv.join(' ')}: ${r}`);
  return performance.now() - t0;
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

export async function learnBench() {
  const out = [];
  for (const [name, path, argv] of PROGRAMS) {
    const { doc } = await learnPolicyFile({ path, argv, ...quiet });
    const learning = learningPolicy(defaultView(path), path);
    const enforcing = enforcingPolicy(doc, path);
    const l = [];
    const e = [];
    for (let i = 0; i < 2; i++) await timed(path, argv, enforcing, false); // warm caches
    for (let i = 0; i < RUNS; i++) {
      l.push(await timed(path, argv, learning, true));
      e.push(await timed(path, argv, enforcing, false));
    }
    out.push({
      name: `learning run, ${name}`,
      unit: 'ms',
      value: median(l),
      peer: 'enforcing run (learned policy)',
      peerValue: median(e),
      goal: 'report (expected large)',
    });
  }
  return out;
}
