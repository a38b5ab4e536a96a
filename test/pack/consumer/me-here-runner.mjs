// Runs me-here.mjs with enableSandboxBeforeExec: false; expects its reply, then a VIOLATION of openat.
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
const executor = new Executor(process.execPath, [process.execPath, `${dir}/me-here.mjs`], {
  enableSandboxBeforeExec: false,
  cwd: dir,
  env: { PATH: '/usr/bin:/bin' },
  limits: { walltime: 20 },
});
const comms = executor.ipc.comms;
const running = new Sandbox(executor, policy).run();
await comms.sendMessage({ text: 'ping' });
const reply = await comms.recvMessage();
comms.close();
const result = await running;
console.log(`me-here consumer: reply ${JSON.stringify(reply)}; ${result.toString()}`);
process.exitCode =
  reply.echo === 'ping' &&
  reply.sandboxed === true &&
  result.status === 'VIOLATION' &&
  result.violation?.syscall === 'openat'
    ? 0
    : 1;
