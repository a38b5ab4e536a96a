// A Node program that sandboxes itself after its initialisation (sandbox-me-here mode), then
// parses untrusted input that arrives over Comms and sends back a summary. run.mjs starts it.
//
// Everything that needs more than the policy allows happens before sandboxMeHere(): modules are
// imported, the Comms channel is opened; stdout and the Comms codec are set up by
// Client.prepare() (sandboxMeHere() calls it; calling it early keeps the call short). Afterwards
// the process can only compute and talk on fds it already has; opening a file, a socket or a
// child process kills the whole sandbox and the executor's Result names the syscall.
import { readFileSync } from 'node:fs';
import { Client, SyncComms } from '@sbx/client';

// Initialise
const comms = new SyncComms(); // fd 1023, the executor's ipc.comms
console.log('sandboxee: initialised, sandboxing myself');

// Sandbox
Client.sandboxMeHere();
console.log('sandboxee: sandboxed');

// Serve: each message is { json } (untrusted text) or { quit: true }
for (;;) {
  const msg = comms.recvMessage();
  if (msg.quit) break;
  let reply;
  try {
    const value = JSON.parse(msg.json);
    reply = { ok: true, summary: summarize(value) };
    // A parser bug an attacker could steer would try this kind of thing. The filter stops it:
    if (value && value.exploit === 'read /etc/passwd') readFileSync('/etc/passwd');
  } catch (err) {
    reply = { ok: false, error: err.message };
  }
  comms.sendMessage(reply);
}
console.log('sandboxee: done');

/** Counts what the document contains. */
function summarize(value) {
  const counts = { objects: 0, arrays: 0, strings: 0, numbers: 0, other: 0, depth: 0 };
  const walk = (v, depth) => {
    counts.depth = Math.max(counts.depth, depth);
    if (Array.isArray(v)) {
      counts.arrays++;
      v.forEach((x) => {
        walk(x, depth + 1);
      });
    } else if (v && typeof v === 'object') {
      counts.objects++;
      for (const x of Object.values(v)) walk(x, depth + 1);
    } else if (typeof v === 'string') counts.strings++;
    else if (typeof v === 'number') counts.numbers++;
    else counts.other++;
  };
  walk(value, 0);
  return counts;
}
