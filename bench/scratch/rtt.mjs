import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker, MessageChannel } from 'node:worker_threads';
import { Comms } from '@sbx/client';
import { sandboxedModule } from '@sbx/modules';
const repo = join(import.meta.dirname, '..', '..');
const moduleFile = join(repo, 'test', 'fixtures', 'modules', 'sample.mjs');
const N = Number(process.env.N ?? 2000);
const pct = (xs, q) => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor(q * s.length))]; };
const report = (name, xs) => console.log(name.padEnd(30), 'p50', (pct(xs, 0.5) * 1000).toFixed(1), 'us  p99', (pct(xs, 0.99) * 1000).toFixed(1), 'us');
async function measure(name, fn) {
  for (let i = 0; i < 200; i++) await fn();
  const xs = [];
  for (let i = 0; i < N; i++) { const t = performance.now(); await fn(); xs.push(performance.now() - t); }
  report(name, xs);
}
const which = process.argv.slice(2);
const want = (k) => which.length === 0 || which.includes(k);
if (want('raw')) {
  const [c, theirs] = Comms.pair();
  const p = spawn(process.execPath, [join(import.meta.dirname, 'echo-child.mjs')], { stdio: ['ignore', 'inherit', 'inherit', theirs] });
  await measure('raw comms msgpack', async () => { await c.sendMessage({ fn: 'add', args: [1, 2], buffers: 0, kinds: '' }); await c.recvMessage(); });
  c.close(); await new Promise((r) => p.on('exit', r));
}
if (want('session')) {
  const s = await sandboxedModule(moduleFile, { mode: 'session', spares: 1 });
  await measure('session add(1,2)', () => s.api.add(1, 2));
  await s.close();
}
if (want('worker')) {
  const w = new Worker(join(repo, 'bench', 'fixtures', 'modules-worker.mjs'), { workerData: { module: pathToFileURL(moduleFile).href } });
  const call = (fn, ...args) => new Promise((r) => { w.once('message', r); w.postMessage({ fn, args }); });
  await measure('worker (bench fixture)', () => call('add', 1, 2));
  await w.terminate();
  const { port1, port2 } = new MessageChannel();
  const w2 = new Worker(`const { workerData } = require('node:worker_threads'); const m = workerData.port; import(${JSON.stringify(pathToFileURL(moduleFile).href)}).then((mod) => { m.on('message', ({ fn, args }) => m.postMessage(mod[fn](...args))); });`, { eval: true, workerData: { port: port2 }, transferList: [port2] });
  let pending = null; port1.on('message', (v) => pending(v));
  await measure('worker MessagePort sync fn', () => new Promise((r) => { pending = r; port1.postMessage({ fn: 'add', args: [1, 2] }); }));
  port1.close(); await w2.terminate();
}
