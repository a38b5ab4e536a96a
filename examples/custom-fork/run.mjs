#!/usr/bin/env node
// Starts server.mjs (Node) or the C forkserver (forkserver.c, built as native/build/testcases/
// c_forkserver) as a forkserver and forks sandboxed children from it.
// Usage: node examples/custom-fork/run.mjs [c]   (after pnpm build)
import { join } from 'node:path';
import { Executor, PolicyBuilder, Sandbox, startForkServer } from '@sbx/executor';

const root = join(import.meta.dirname, '..', '..');
const useC = process.argv[2] === 'c';
const binary = useC ? join(root, 'native', 'build', 'testcases', 'c_forkserver') : process.execPath;

// What the forkserver sees (every child sees the same) and what a child may do once it called
// sandboxMeHere(): the Node runtime on what it has, no new files.
const b = new PolicyBuilder().addFile(binary).addLibrariesForBinary(binary).addDirectory('/proc');
if (useC)
  b.allowStaticStartup().allowExit().allowRead().allowWrite().allowSyscalls(['getpid', 'close', 'sendmsg', 'recvmsg']);
else
  b.allowNodeRuntime({ openFiles: false, threads: true }).addDirectory(root).addFile('/dev/null', { writable: true });
const policy = b.build();

const argv = useC
  ? undefined
  : [process.execPath, '--single-threaded', '--v8-pool-size=1', join(import.meta.dirname, 'server.mjs')];
const server = await startForkServer(binary, argv, { policy, cwd: useC ? '/' : root, env: { PATH: '/usr/bin:/bin' } });
try {
  const docs = useC
    ? ['hello', 'from a forked child', 'violate']
    : ['# Title\nsome <b>text</b>', 'second & last', 'now steal /etc/passwd'];
  for (const doc of docs) {
    const executor = new Executor(server, { limits: { walltime: 5 } });
    const comms = executor.ipc.comms;
    const sandbox = new Sandbox(executor, policy);
    const t0 = performance.now();
    await sandbox.runAsync(); // one fork request: the child exists now
    if (useC) await comms.sendString(doc);
    else await comms.sendMessage({ doc });
    const answer = await (useC ? comms.recvString() : comms.recvMessage()).catch((e) => `(no answer: ${e.message})`);
    const ms = (performance.now() - t0).toFixed(1);
    console.log(`${JSON.stringify(doc)} -> ${JSON.stringify(answer)} in ${ms} ms`);
    console.log(`  ${(await sandbox.awaitResult()).toString()}`);
    comms.close();
  }
} finally {
  await server.close();
}
