import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { Comms } from '@sbx/client';
import { sandboxedModule } from '@sbx/modules';
const repo = join(import.meta.dirname, '..', '..');
const moduleFile = join(repo, 'test', 'fixtures', 'modules', 'sample.mjs');
const N = Number(process.env.N ?? 3000);
const pct = (xs, q) => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor(q * s.length))]; };
const [c, theirs] = Comms.pair();
const p = spawn(process.execPath, [join(import.meta.dirname, 'echo-child.mjs')], { stdio: ['ignore', 'inherit', 'inherit', theirs] });
const s = await sandboxedModule(moduleFile, { mode: 'session', spares: 0 });
const raw = async () => { await c.sendMessage({ fn: 'add', args: [1, 2], buffers: 0, kinds: '' }); await c.recvMessage(); };
const ses = () => s.api.add(1, 2);
const a = [], b = [];
for (let i = 0; i < 300; i++) { await raw(); await ses(); }
for (let i = 0; i < N; i++) {
  let t = performance.now(); await raw(); a.push(performance.now() - t);
  t = performance.now(); await ses(); b.push(performance.now() - t);
}
const f = (x) => (x * 1000).toFixed(1);
console.log(`raw p50 ${f(pct(a, 0.5))} p99 ${f(pct(a, 0.99))} | session p50 ${f(pct(b, 0.5))} p99 ${f(pct(b, 0.99))} us | ratio ${(pct(b, 0.5) / pct(a, 0.5)).toFixed(2)}`);
c.close(); await s.close(); await new Promise((r) => p.on('exit', r));
