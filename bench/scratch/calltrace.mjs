import { join } from 'node:path';
import { sandboxedModule } from '@sbx/modules';
const repo = join(import.meta.dirname, '..', '..');
const moduleFile = join(repo, 'test', 'fixtures', 'modules', 'sample.mjs');
const spares = Number(process.env.SPARES ?? 2);
const m = await sandboxedModule(moduleFile, { mode: 'call', spares, trace: true, stderr: process.env.ERR ?? "capture" });
const pct = (xs, q) => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor(q * s.length))]; };
const gap = Number(process.env.GAP ?? 0);
const tot = [], forked = [];
const stages = new Map();
for (let i = 0; i < Number(process.env.N ?? 40); i++) {
  const t = performance.now();
  await m.api.add(1, 2);
  tot.push(performance.now() - t);
  forked.push(m.lastTrace.forkedUs / 1000);
  for (const s of m.lastTrace.fork.stages) { const k = `${s.process}: ${s.stage}`; if (!stages.has(k)) stages.set(k, []); stages.get(k).push(s.us); }
  if (i === 20) console.log(m.lastTrace.fork.toString(), '\nforked', m.lastTrace.forkedUs.toFixed(0), 'answered', m.lastTrace.answeredUs.toFixed(0));
  if (gap) await new Promise((r) => setTimeout(r, gap));
}
console.log('call p50', pct(tot, 0.5).toFixed(2), 'ms; fork part p50', pct(forked, 0.5).toFixed(2));
const rows = [...stages].map(([k, v]) => [pct(v, 0.5), k]).sort((a, b) => a[0] - b[0]);
for (const [us, k] of rows) console.log(us.toFixed(0).padStart(8), k);
await m.close();
