#!/usr/bin/env node
// A long custom-fork soak (not part of CI): N forks (default 2,000) of the mixed workload from
// one Node forkserver, two at a time, half on request and half from spares; every child's
// result checked, a hang is a TIMEOUT; the forkserver's threads, fds and RSS before and after.
//   node bench/fork-soak.mjs [N]
import { Executor, PolicyBuilder, Sandbox } from '@sbx/executor';
import { join } from 'node:path';
import { serverStats, startServer } from './fork.mjs';

const N = Number(process.argv[2] ?? 2000);
const repo = join(import.meta.dirname, '..');
const b = new PolicyBuilder().allowNodeRuntime({ threads: true, openFiles: true }).allowSyscalls(['getppid']);
b.addFile(process.execPath).addLibrariesForBinary(process.execPath).addDirectory(repo).addDirectory('/proc');
for (const f of ['/dev/null', '/dev/urandom']) b.addFile(f, { writable: true });
b.addTmpfs('/tmp', { sizeBytes: 16 << 20 });
const policy = b.build();

for (const spares of [0, 2]) {
  const server = await startServer(policy, 50, spares);
  const counts = { ok: 0, timeout: 0, other: 0 };
  const bad = [];
  let next = 0;
  const one = async (i) => {
    const exit = i % 3 === 0 ? 'natural' : 'exit';
    const code = i % 4;
    const ex = new Executor(server, { limits: { walltime: 30 } });
    const comms = ex.ipc.comms;
    const sb = new Sandbox(ex, policy);
    await sb.runAsync();
    await comms.sendMessage({ kind: 'workload', light: i % 10 !== 0, exit, code });
    const reply = await comms.recvMessage().catch((e) => ({ error: e.message }));
    const r = await sb.awaitResult();
    comms.close();
    if (r.status === 'OK' && r.exitCode === code && reply.ok) counts.ok++;
    else {
      if (r.status === 'TIMEOUT') counts.timeout++;
      else counts.other++;
      if (bad.length < 10) bad.push(`#${i}: ${r.toString()} ${JSON.stringify(reply)}`);
    }
  };
  for (let i = 0; i < 10; i++) await one(i);
  const before = serverStats(server);
  const t0 = performance.now();
  const half = N / 2;
  await Promise.all(
    [0, 1].map(async () => {
      while (next < half) await one(next++);
    }),
  );
  const after = serverStats(server);
  const s = (performance.now() - t0) / 1000;
  console.log(JSON.stringify({ spares, forks: half, ...counts, seconds: Math.round(s), before, after, bad }));
  await server.close();
}
