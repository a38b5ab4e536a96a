import { Executor, PolicyBuilder, Sandbox, formatTimeline } from '@sbx/executor';
import { join } from 'node:path';
const root = join(import.meta.dirname, '..');
const prepare = process.argv[2] !== 'cold';
const script = `
import { Client } from '@sbx/client';
${prepare ? 'Client.prepare();' : 'Client.kernelSupport();'}
const t0 = process.hrtime.bigint();
Client.sandboxMeHere();
const t1 = process.hrtime.bigint();
process.stdout.write(String(Number(t1 - t0) / 1000));
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
