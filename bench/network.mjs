// Network rules: the latency of an allowed TCP connect + first byte through the monitor against the
// same connect without a sandbox, in one run.
//
// A C server (native/testcases/net_client serve, unsandboxed, its own process) accepts on the
// host's 127.0.0.1 and writes one byte to each connection. native/testcases/net_client bench times
// N x (socket, connect, read 1 byte, close) inside its own process and prints p50/p90, so process
// start-up is never in the figure. Three runs of the same client:
//   - no sandbox;
//   - in a sandbox under network rules (allowIPv4('127.0.0.1', port)): connect() goes to the
//     monitor, which connects from the executor's namespace and puts its socket in place
//     (SECCOMP_IOCTL_NOTIF_ADDFD with SETFD);
//   - in a sandbox with allowUnrestrictedNetworking() (the same filter, no monitor decision), to
//     show what the decision itself costs.
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { Executor, PolicyBuilder, Sandbox } from '@sbx/executor';

const root = join(import.meta.dirname, '..');
const client = join(root, 'native', 'build', 'testcases', 'net_client');
const N = 2000;
const ROUNDS = 5;

function policy(port, unrestricted) {
  const b = new PolicyBuilder()
    .allowDynamicStartup()
    .allowSystemMalloc()
    .allowRead()
    .allowWrite()
    .allowExit()
    .allowTime()
    .allowSyscalls(['getrandom', 'set_robust_list', 'rseq', 'close', 'sysinfo'])
    .allowNetworkClient()
    .addLibrariesForBinary(client);
  if (unrestricted) b.allowUnrestrictedNetworking();
  else b.allowIPv4('127.0.0.1', port);
  return b.build();
}

async function sandboxed(port, unrestricted) {
  const ex = new Executor(client, [client, 'bench', '127.0.0.1', String(port), String(N)], {
    stdio: ['ignore', 'pipe', 'inherit'],
    limits: { walltime: 60 },
  });
  const sb = new Sandbox(ex, policy(port, unrestricted));
  const result = sb.run();
  await sb.runAsync();
  let out = '';
  sb.stdout.on('data', (d) => (out += d));
  const [r] = await Promise.all([result, once(sb.stdout, 'end')]);
  if (r.status !== 'OK') throw new Error(`network bench: the sandboxed client ended ${r.toString()}: ${out}`);
  return JSON.parse(out);
}

function plain(port) {
  const r = spawnSync(client, ['bench', '127.0.0.1', String(port), String(N)], { encoding: 'utf8', timeout: 60_000 });
  if (r.status !== 0) throw new Error(`network bench: net_client bench failed: ${r.stderr || r.stdout}`);
  return JSON.parse(r.stdout);
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

export async function networkBench() {
  const server = spawn(client, ['serve', '127.0.0.1', '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    const [line] = await once(createInterface({ input: server.stdout }), 'line');
    const port = Number(line);
    // Interleaved rounds; the median of the rounds' p50s (and p90s) counts.
    const runs = { plain: [], rules: [], host: [] };
    for (let i = 0; i < ROUNDS; i++) {
      runs.plain.push(plain(port));
      runs.rules.push(await sandboxed(port, false));
      runs.host.push(await sandboxed(port, true));
    }
    const q = (k, f) => median(runs[k].map((r) => r[f]));
    const peer = 'same connect, no sandbox';
    return [
      {
        name: 'allowed TCP connect + first byte via the monitor, p50',
        unit: 'µs',
        value: q('rules', 'p50'),
        peer,
        peerValue: q('plain', 'p50'),
        goal: '<= 1.1×',
      },
      {
        name: 'allowed TCP connect + first byte via the monitor, p90',
        unit: 'µs',
        value: q('rules', 'p90'),
        peer,
        peerValue: q('plain', 'p90'),
      },
      {
        name: 'the same connect, sandbox with unrestricted network, p50',
        unit: 'µs',
        value: q('host', 'p50'),
        peer,
        peerValue: q('plain', 'p50'),
      },
    ];
  } finally {
    server.kill('SIGKILL');
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  for (const r of await networkBench())
    console.log(
      `${r.name}: ${r.value.toFixed(1)} ${r.unit} vs ${r.peerValue.toFixed(1)} ${r.unit} (${(r.value / r.peerValue).toFixed(2)}×)`,
    );
}
