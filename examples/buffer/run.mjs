#!/usr/bin/env node
// The executor fills a 64 MiB shared buffer, a sandboxee (Node: sandboxee.mjs, or C:
// native/testcases/buffer_peer.c with `--c`) inverts it in place, the executor checks the result.
// Only the memfd travels (SCM_RIGHTS); both processes map the same pages, nothing is copied.
// Usage: node examples/buffer/run.mjs [--c]   (after pnpm build)
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Executor, PolicyBuilder, Sandbox, SharedBuffer } from '@sbx/executor';

const root = join(import.meta.dirname, '..', '..');
const useC = process.argv.includes('--c');
const cPeer = join(root, 'native', 'build', 'testcases', 'buffer_peer');
const argv = useC ? [cPeer, 'transform'] : [process.execPath, join(import.meta.dirname, 'sandboxee.mjs')];
if (useC && !existsSync(cPeer)) throw new Error(`${cPeer} is not built: run pnpm build`);

// What Node's own start-up needs beyond allowDynamicStartup (allowNodeRuntime covers what runs
// after its init: it is made for sandbox-me-here mode).
const NODE_STARTUP = ['capget', 'epoll_create1', 'pipe2', 'eventfd2', 'clone', 'pkey_alloc', 'sysinfo', 'fcntl'];

// What the sandboxee sees: its program and libraries (and the repo, for @sbx/client and the
// addon). What it may do: the runtime's usual calls, plus Comms and mapping what it receives.
const b = new PolicyBuilder().addFile(argv[0]).addLibrariesForBinary(argv[0]);
if (useC) {
  b.allowDynamicStartup()
    .allowSystemMalloc()
    .allowMmap()
    .allowRead()
    .allowWrite()
    .allowExit()
    .allowSyscalls(['recvmsg', 'sendmsg', 'fcntl', 'fstat', 'fstatfs', 'newfstatat', 'munmap', 'close']);
} else {
  b.allowDynamicStartup()
    .allowNodeRuntime()
    .allowSyscalls(NODE_STARTUP)
    .addDirectory(root)
    .addDirectory('/proc')
    .addFile('/dev/null', { writable: true });
}
const policy = b.build();

const executor = new Executor(argv[0], argv, { cwd: root, env: { PATH: '/usr/bin:/bin' }, limits: { walltime: 30 } });
const comms = executor.ipc.comms; // the sandboxee's fd 1023
const result = new Sandbox(executor, policy).run();

const SIZE = 64 << 20;
const buf = SharedBuffer.create(SIZE);
const words = new Uint32Array(buf.arrayBuffer);
for (let i = 0; i < words.length; i++) words[i] = i; // "the data"

const t0 = performance.now();
let ms = NaN;
try {
  await comms.sendBuffer(buf); // 2 small messages, whatever the size
  await comms.recvUint64(); // the sandboxee is done
  ms = performance.now() - t0;
} catch (err) {
  console.log(`runner: the channel ended: ${err.code ?? err.message}`);
}

let bad = 0;
for (let i = 0; i < words.length; i++) if (words[i] !== ~i >>> 0) bad++;
buf.close();
comms.close();
const r = await result;
console.log(
  `runner: 64 MiB inverted in place by the ${useC ? 'C' : 'Node'} sandboxee in ${ms.toFixed(1)} ms; ${bad} wrong words`,
);
console.log(`runner: ${r.toString()}`);
process.exitCode = bad === 0 && r.status === 'OK' ? 0 : 1;
