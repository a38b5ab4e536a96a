#!/usr/bin/env node
// Runs a C sandbox-me-here program (c/main.c, built by c/run.sh) in a sandbox, sends it text over
// Comms and prints the word counts and the Result. The last text makes it try to open
// /etc/passwd after it sandboxed itself: the Result is a VIOLATION naming openat.
// Usage: node examples/sandbox-me-here/run-c.mjs <path of the built me_here_c>
import { resolve } from 'node:path';
import { Executor, PolicyBuilder, Sandbox } from '@sbx/executor';

const bin = resolve(process.argv[2] ?? '');
// After sbx_client_sandbox_me_here(): messages on the comms socket, stdout, malloc, exit.
const policy = new PolicyBuilder()
  .allowRead()
  .allowWrite()
  .allowSyscalls(['sendmsg', 'recvmsg', 'fstat', 'newfstatat'])
  .allowSystemMalloc()
  .allowExit()
  .addFile(bin)
  .addLibrariesForBinary(bin)
  .build();

const executor = new Executor(bin, [bin], { enableSandboxBeforeExec: false, env: {}, limits: { walltime: 10 } });
const comms = executor.ipc.comms;
const sandbox = new Sandbox(executor, policy);
const result = sandbox.run();

try {
  for (const text of ['the quick brown fox', '  untrusted\ttext with   odd spacing\n', 'open /etc/passwd']) {
    await comms.sendString(text);
    console.log(`runner: ${JSON.stringify(text)} -> ${await comms.recvUint64()} words`);
  }
} catch (err) {
  console.log(`runner: the channel ended: ${err.code ?? err.message}`);
}
comms.close();
const r = await result;
console.log(`runner: ${r.toString()}`);
process.exitCode = r.status === 'VIOLATION' && r.violation?.syscall === 'openat' ? 0 : 1;
