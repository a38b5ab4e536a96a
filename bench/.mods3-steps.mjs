import { join } from 'node:path';
import { sandboxedModule } from '@sbx/modules';
const m = await sandboxedModule(join(process.cwd(), 'test/fixtures/modules/sample.mjs'), { spares: 2 });
const rows = [];
for (let i = 0; i < 80; i++) {
  await new Promise((r) => setTimeout(r, 40));
  globalThis.__T = [];
  const t0 = performance.now();
  await m.api.add(1, 2);
  const end = performance.now();
  const S = globalThis.__T[0];
  if (i >= 10) rows.push({ start: S.a - t0, exAndStderr: S.stderr - S.a, sandbox: S.sandbox - S.stderr, runSync: S.runSync - S.sandbox, ran: S.ran - S.runSync, rest: end - S.ran, total: end - t0 });
}
const med = (xs) => xs.sort((a, b) => a - b)[xs.length >> 1];
for (const k of Object.keys(rows[0])) console.log(k.padEnd(10), (med(rows.map((r) => r[k])) * 1000).toFixed(0), 'µs');
await m.close();
