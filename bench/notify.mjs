// Notify hooks: the round trip of a hooked syscall (the filter's USER_NOTIF, the monitor thread,
// the report to JS, the handler, the answer, CONTINUE) against the same syscall allowed by the
// filter, in one sandbox and one run. native/testcases/hook_probe bench N makes N getpid() calls
// with 1 in arg 0 (hooked: notifySyscall('getpid', [{ arg0: [1] }]), the handler answers 'allow'),
// then N with 2 in arg 0 (not hooked: the policy allows it), and prints the wall-clock ns per call
// of each. The median of the rounds counts.
import { join } from 'node:path';
import { Executor, PolicyBuilder, Sandbox } from '@sbx/executor';

const root = join(import.meta.dirname, '..');
const probe = join(root, 'native', 'build', 'testcases', 'hook_probe');
const N = 2000;
const ROUNDS = 5;

function policy() {
  const b = new PolicyBuilder()
    .notifySyscall('getpid', [{ arg0: [1] }])
    .allowDynamicStartup()
    .allowSystemMalloc()
    .allowWrite()
    .allowExit()
    .allowTime()
    .allowGetPid()
    .addLibrariesForBinary(probe);
  return b.build();
}

async function round(p) {
  const executor = new Executor(probe, [probe, 'bench', String(N)], { stdio: ['ignore', 'pipe', 'inherit'] });
  let handled = 0;
  const sandbox = new Sandbox(executor, p, {
    onSyscall: () => {
      handled++;
      return 'allow';
    },
  });
  const out = [];
  sandbox.stdout.on('data', (d) => out.push(d));
  const ended = new Promise((resolve) => sandbox.stdout.on('end', resolve));
  const result = await sandbox.run();
  await ended;
  if (result.status !== 'OK' || handled !== N) throw new Error(`notify bench: ${result.reason} (${handled} handled)`);
  return JSON.parse(Buffer.concat(out).toString());
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

export async function notifyBench() {
  const p = policy();
  const runs = [];
  for (let i = 0; i < ROUNDS; i++) runs.push(await round(p));
  return [
    {
      name: 'hooked getpid (handler answers allow), per call',
      unit: 'µs',
      value: median(runs.map((r) => r.tag1Ns)) / 1000,
      peer: 'getpid allowed by the filter, same sandbox',
      peerValue: median(runs.map((r) => r.tag2Ns)) / 1000,
    },
  ];
}

if (import.meta.url === `file://${process.argv[1]}`) {
  for (const r of await notifyBench())
    console.log(
      `${r.name}: ${r.value.toFixed(2)} ${r.unit} vs ${r.peerValue.toFixed(3)} ${r.unit} (${(r.value / r.peerValue).toFixed(1)}×)`,
    );
}
