// Custom-fork mode from the installed packages: starts fork-server.mjs (the shipped fork binding for
// this node's ABI), forks three sandboxed children that answer on their Comms, then a fourth that
// breaks its policy: expects three OK answers from three pids and a VIOLATION of openat.
import { Executor, PolicyBuilder, Sandbox } from '@sbx/executor';

const dir = import.meta.dirname;
const policy = new PolicyBuilder()
  .allowNodeRuntime({ openFiles: false })
  .addFile(process.execPath)
  .addLibrariesForBinary(process.execPath)
  .addDirectory(dir)
  .addDirectory('/proc')
  .addFile('/dev/null', { writable: true })
  .build();
const server = await Executor.startForkServer(
  process.execPath,
  [process.execPath, '--single-threaded', '--v8-pool-size=1', `${dir}/fork-server.mjs`],
  {
    policy,
    cwd: dir,
    env: { PATH: '/usr/bin:/bin' },
  },
);
const pids = new Set();
let ok = 0;
try {
  for (let i = 0; i < 4; i++) {
    const ex = new Executor(server, { limits: { walltime: 20 } });
    const comms = ex.ipc.comms;
    const running = new Sandbox(ex, policy).run();
    await comms.sendMessage({ n: i, violate: i === 3 });
    const reply = await comms.recvMessage();
    comms.close();
    const result = await running;
    if (i < 3 && reply.square === i * i && result.status === 'OK') ok++;
    if (i < 3) pids.add(reply.pid);
    if (i === 3)
      console.log(
        `fork consumer: node ${process.version}, ${ok} children OK from ${pids.size} pids; the last: ${result.toString()}`,
      );
    if (i === 3)
      process.exitCode =
        ok === 3 && pids.size === 3 && result.status === 'VIOLATION' && result.violation?.syscall === 'openat' ? 0 : 1;
  }
} finally {
  await server.close();
}
