#!/usr/bin/env node
// pnpm bench: every figure is a ratio against a peer measured in the same run. Prints a table and
// writes bench/results.json (one record per figure) and bench/results.md.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { commsBench } from './comms.mjs';

const here = import.meta.dirname;
const only = process.argv.slice(2);
const sections = [
  ['comms', commsBench],
  ['spawn', async () => (await import('./spawn.mjs')).spawnBench()],
  ['trace', async () => (await import('./trace.mjs')).traceBench()],
  ['syscall', async () => (await import('./syscall.mjs')).syscallBench()],
  ['cli', async () => (await import('./cli.mjs')).cliBench()],
  ['client', async () => (await import('./client.mjs')).clientBench()],
  ['network', async () => (await import('./network.mjs')).networkBench()],
  ['notify', async () => (await import('./notify.mjs')).notifyBench()],
  ['buffer', async () => (await import('./buffer.mjs')).bufferBench()],
  ['fork', async () => (await import('./fork.mjs')).forkBenchLines()],
  ['learn', async () => (await import('./learn.mjs')).learnBench()],
  ['corpus', async () => (await import('./corpus.mjs')).corpusBench()],
  ['service', async () => (await import('./service.mjs')).serviceBench()],
  ['modules', async () => (await import('./modules.mjs')).modulesBench()],
];

const records = [];
for (const [name, fn] of sections) {
  if (only.length && !only.includes(name)) continue;
  process.stderr.write(`bench: ${name}...\n`);
  for (const r of await fn()) records.push({ section: name, ...r, ratio: round(r.value / r.peerValue, 3) });
}

const rows = records.map((r) => [
  r.name,
  `${fmt(r.value)} ${r.unit}`,
  r.peer,
  `${fmt(r.peerValue)} ${r.unit}`,
  `${r.ratio}×`,
  r.goal ?? '',
]);
const head = ['figure', 'sbx', 'peer', 'peer value', 'ratio', 'goal'];
const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
const line = (r) => r.map((c, i) => String(c).padEnd(widths[i])).join('  ');
console.log([line(head), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n'));

const md = [
  `| ${head.join(' | ')} |`,
  `|${head.map(() => '---').join('|')}|`,
  ...rows.map((r) => `| ${r.join(' | ')} |`),
].join('\n');
writeFileSync(
  join(here, 'results.json'),
  `${JSON.stringify({ date: new Date().toISOString(), node: process.version, records }, null, 2)}\n`,
);
writeFileSync(
  join(here, 'results.md'),
  `# sbx bench (${new Date().toISOString()}, node ${process.version})\n\n${md}\n`,
);

function round(x, d) {
  const f = 10 ** d;
  return Math.round(x * f) / f;
}
function fmt(x) {
  return x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2);
}
