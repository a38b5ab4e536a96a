import { Executor, PolicyBuilder, Sandbox, formatTimeline } from '@sbx/executor';
import { join } from 'node:path';
const root = join(import.meta.dirname, '..');
const prepare = process.argv[2] !== 'cold';
const script = `
import { Client } from '@sbx/client';
${prepare ? 'Client.prepare();' : 'Client.kernelSupport();'}
const { loadCodec } = await import('@sbx/client/dist/codec.js').catch(() => ({}));
const { native } = await import('@sbx/client/internal');
const h = () => process.hrtime.bigint();
const t0 = h();
void process.stdout; const a = h();
void process.stderr; const b = h();
${prepare ? '' : "Client.prepare();"} const c = h();
Client.sandboxMeHere();
const t1 = h();
const us = (x, y) => (Number(y - x) / 1000).toFixed(0);
process.stdout.write(\`total \${us(t0, t1)} stdout \${us(t0, a)} stderr \${us(a, b)} prepare-rest \${us(b, c)} handshake \${us(c, t1)}\`);
`;
const b = new PolicyBuilder().allowNodeRuntime({ openFiles: false });
b.addFile(process.execPath).addLibrariesForBinary(process.execPath).addDirectory(root).addDirectory('/proc');
for (const f of ['/dev/null', '/dev/urandom']) b.addFile(f, { writable: true });
const p = b.build();
let last;
for (let i = 0; i < Number(process.env.N ?? 8); i++) {
  const ex = new Executor(process.execPath, [process.execPath, '--input-type=module', '-e', script], {
    enableSandboxBeforeExec: false, stdio: ['ignore', 'pipe', 'inherit'], cwd: root, env: { PATH: '/usr/bin:/bin' }, limits: { walltime: 20 }, trace: true,
  });
  const sb = new Sandbox(ex, p);
  const result = sb.run();
  await sb.runAsync();
  let out = '';
  sb.stdout.on('data', (d) => (out += d));
  const [r] = await Promise.all([result, new Promise((res) => sb.stdout.on('end', res))]);
  console.log('call µs', out);
  last = sb;
}
console.log(formatTimeline(last.timeline));
