// An ESM consumer: /bin/echo in a sandbox through the public API.
import { Executor, PolicyBuilder, Sandbox } from '@sbx/executor';

const policy = new PolicyBuilder()
  .allowDynamicStartup()
  .allowWrite()
  .allowExit()
  .allowSyscall('ioctl')
  .addLibrariesForBinary('/bin/echo')
  .build();
const result = await new Sandbox(
  new Executor('/bin/echo', ['echo', 'echo from the esm consumer'], { limits: { walltime: 10 } }),
  policy,
).run();
console.log(`esm consumer: ${result.toString()}`);
process.exitCode = result.status === 'OK' && result.exitCode === 0 ? 0 : 1;
