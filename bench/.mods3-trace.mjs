import { join } from 'node:path';
import { sandboxedModule } from '@sbx/modules';
const m = await sandboxedModule(join(process.cwd(), 'test/fixtures/modules/sample.mjs'), { spares: 2, trace: true });
const rows = [];
for (let i = 0; i < 80; i++) {
  await new Promise((r) => setTimeout(r, 40));
  const t0 = performance.now();
  await m.api.add(1, 2);
  const total = performance.now() - t0;
  if (i >= 10) rows.push({ total, forkedUs: m.lastTrace.forkedUs, answeredUs: m.lastTrace.answeredUs, stages: m.lastTrace.fork.stages });
}
const med = (xs) => xs.sort((a, b) => a - b)[xs.length >> 1];
console.log('total ms p50', med(rows.map((r) => r.total)).toFixed(3));
console.log('forkedUs p50', med(rows.map((r) => r.forkedUs)).toFixed(0), 'answeredUs p50', med(rows.map((r) => r.answeredUs)).toFixed(0));
const stages = {};
for (const r of rows) for (const s of r.stages) (stages[`${s.process} ${s.stage}`] ??= []).push(s.us);
for (const [k, v] of Object.entries(stages)) console.log(k.padEnd(50), med(v).toFixed(0));
await m.close();
