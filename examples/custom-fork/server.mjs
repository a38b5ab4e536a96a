// server.mjs: a Node forkserver (examples/custom-fork/README.md). It loads and warms what every
// child shares once (here: a markdown-ish renderer and its tables), then hands out children on
// request. Each child sandboxes itself and renders one untrusted document sent over Comms.
// Run by run.mjs as `node --single-threaded --v8-pool-size=1 server.mjs`.
import { Client, ForkingClient, SyncComms } from '@sbx/client';

// ---- the warm state (built once, shared by every child) ----
const escapes = new Map([
  ['&', '&amp;'],
  ['<', '&lt;'],
  ['>', '&gt;'],
  ['"', '&quot;'],
]);
const escapeHtml = (s) => s.replace(/[&<>"]/g, (c) => escapes.get(c));
function render(doc) {
  return doc
    .split('\n')
    .map((line) =>
      line.startsWith('# ') ? `<h1>${escapeHtml(line.slice(2))}</h1>` : line ? `<p>${escapeHtml(line)}</p>` : '',
    )
    .join('');
}
render('# warm-up\nso the renderer is compiled before any child exists');

ForkingClient.check(); // the node flags, before anything else: a clear error if one is missing
ForkingClient.setSpares(2); // two children forked ahead: a request costs a message, not a fork
await new Promise((r) => setTimeout(r, 1));
await ForkingClient.ready(); // nothing in flight that a child would inherit half done
ForkingClient.enterForkLoop(); // returns only in a child

// ---- a child ----
Client.sandboxMeHere(); // the policy of this child's Sandbox, from now on
const comms = new SyncComms(); // fd 1023: this child's own channel
const { doc } = comms.recvMessage();
if (doc.includes('steal')) (await import('node:fs')).readFileSync('/etc/passwd'); // a violation
comms.sendMessage({ pid: process.pid, html: render(doc) });
