#!/usr/bin/env node
// Starts node.mjs in a sandbox-me-here sandbox, sends it untrusted JSON over Comms, prints what
// comes back and the Result. The last input makes the sandboxee try to read /etc/passwd after it
// sandboxed itself: the Result is a VIOLATION naming openat.
// Usage: node examples/sandbox-me-here/run.mjs   (after pnpm build)
import { join } from 'node:path';
import { Executor, PolicyBuilder, Sandbox } from '@sbx/executor';

const root = join(import.meta.dirname, '..', '..');

// What the program may do after sandboxMeHere(): the Node runtime on fds it already has, no new
// files. What it sees at all: node and its libraries, the repo (for @sbx/client), /proc.
const policy = new PolicyBuilder()
  .allowNodeRuntime({ openFiles: false })
  .addFile(process.execPath)
  .addLibrariesForBinary(process.execPath)
  .addDirectory(root)
  .addDirectory('/proc')
  .addFile('/dev/null', { writable: true })
  .build();

const executor = new Executor(process.execPath, [process.execPath, join(import.meta.dirname, 'node.mjs')], {
  enableSandboxBeforeExec: false, // the program installs the policy itself
  cwd: root,
  env: { PATH: '/usr/bin:/bin' },
  limits: { walltime: 10 },
});
const comms = executor.ipc.comms; // the sandboxee's fd 1023
const sandbox = new Sandbox(executor, policy);
const result = sandbox.run();

const inputs = [
  '{"user": {"name": "ada", "langs": ["en", "fr"]}, "n": [1, 2, 3]}',
  '[[[[["deep"]]]]]',
  '{"broken": ',
  '{"exploit": "read /etc/passwd"}',
];
try {
  for (const json of inputs) {
    await comms.sendMessage({ json });
    console.log(`runner: ${json}\n   -> ${JSON.stringify(await comms.recvMessage())}`);
  }
  await comms.sendMessage({ quit: true });
} catch (err) {
  console.log(`runner: the channel ended: ${err.code ?? err.message}`);
}
comms.close();
const r = await result;
console.log(`runner: ${r.toString()}`);
process.exitCode = r.status === 'VIOLATION' && r.violation?.syscall === 'openat' ? 0 : 1;
