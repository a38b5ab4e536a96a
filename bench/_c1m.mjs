import { spawn } from 'node:child_process';
import { closeSync } from 'node:fs';
import { Comms } from '@sbx/client';
const size = 1 << 20, n = 512;
const body = process.argv[2] ?? `for (;;) { const n = s.recvUint32(); for (let i = 0; i < n; i++) s.recvBytes(); s.sendUint32(n); }`;
const [comms, theirs] = Comms.pair();
const child = spawn(process.execPath, ['--input-type=module', '-e', `import { SyncComms } from '@sbx/client'; const s = new SyncComms(3); ${body}`], { stdio: ['ignore', 'inherit', 'inherit', theirs] });
closeSync(theirs);
const buf = Buffer.alloc(size, 1);
const rounds = [];
const cpu0 = process.cpuUsage();
for (let r = 0; r < 5; r++) {
  const t0 = performance.now();
  await comms.sendUint32(n);
  for (let i = 0; i < n; i++) comms.sendBytes(buf);
  await comms.recvUint32();
  rounds.push((n * size) / 1e6 / ((performance.now() - t0) / 1000));
}
const cpu = process.cpuUsage(cpu0);
const st = await import('node:fs').then(f => f.readFileSync(`/proc/${child.pid}/stat`, 'utf8').split(') ')[1].split(' '));
console.log(rounds.map(x => x.toFixed(0)).join(' '), 'sender user/sys ms', (cpu.user/1000).toFixed(0), (cpu.system/1000).toFixed(0), 'child utime/stime ticks', st[11], st[12], 'minflt', st[7]);
comms.close(); child.kill();
