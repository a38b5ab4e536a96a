import { SharedBuffer, Comms, SyncComms } from '@sbx/client';
import { native } from '@sbx/client/internal';
const n = native(); const N = 300;
const [c, theirs] = Comms.pair(); const s = new SyncComms(theirs);
const b = SharedBuffer.create(4096);
let ta = 0, tb = 0, tc = 0, td = 0;
for (let i = 0; i < N; i++) {
  let t0 = performance.now();
  const p = c.sendBuffer(b);
  let t1 = performance.now();
  await p;
  let t2 = performance.now();
  const sz = s.recvUint64(); const fd = s.recvFd();
  let t3 = performance.now();
  const r = SharedBuffer.fromFd(fd); r.close();
  let t4 = performance.now();
  ta += t1 - t0; tb += t2 - t1; tc += t3 - t2; td += t4 - t3;
}
console.log([ta, tb, tc, td].map((x) => (x * 1000 / N).toFixed(1)));
