// runner.ts: the program a sandboxed module's forkserver runs (started by sandboxedModule() as
// `node --single-threaded --v8-pool-size=1 runner.js <module URL> <spares> <threshold>`).
// It imports the module once, warms up, and serves fork requests; each child sandboxes itself
// (the policy the executor serves it) and then answers calls on its Comms channel until the
// executor closes it: one call in 'call' mode, any number in 'session' mode.
import { Client, CommsError, ForkingClient, SharedBuffer, SyncComms } from '@sbx/client';
import { closeSync } from 'node:fs';
import {
  type Attachment,
  type CallReply,
  type CallRequest,
  errorInfo,
  extractBuffers,
  PassFd,
  type RemoteErrorInfo,
  restoreBuffers,
} from './wire.js';

const [moduleUrl, sparesArg, thresholdArg] = process.argv.slice(2);
ForkingClient.check(); // the node flags first: a clear error before anything is loaded
const threshold = Number(thresholdArg);

// The module, imported once in the forkserver: every child starts with it loaded. An import
// failure is not fatal here: each child reports it, so the caller gets the module's own error.
let exportsOf: Record<string, unknown> = {};
let importError: RemoteErrorInfo | null = null;
let thrown: unknown = null;
// Node 20 reports a CommonJS module that throws under import() a second time, as an unhandled
// rejection of the same error: that one is not fatal either.
const sameError = (reason: unknown): void => {
  if (reason !== thrown) throw reason;
};
process.on('unhandledRejection', sameError);
try {
  exportsOf = (await import(String(moduleUrl))) as Record<string, unknown>;
} catch (err) {
  thrown = err;
  importError = { ...errorInfo(err), code: 'IMPORT_FAILED' };
}
await new Promise((r) => setImmediate(r));
process.off('unhandledRejection', sameError);

/** The module's callable exports: named function exports, else the functions of its default export. */
function functionsOf(mod: Record<string, unknown>): Map<string, (...args: unknown[]) => unknown> {
  const fns = new Map<string, (...args: unknown[]) => unknown>();
  for (const [k, v] of Object.entries(mod)) if (typeof v === 'function' && k !== 'default') fns.set(k, v as never);
  const d = mod.default;
  if (d !== null && (typeof d === 'object' || typeof d === 'function')) {
    for (const k of Object.keys(d)) {
      const v = (d as Record<string, unknown>)[k];
      if (typeof v === 'function' && !fns.has(k)) fns.set(k, (v as (...a: unknown[]) => unknown).bind(d));
    }
  }
  if (typeof d === 'function' && !fns.has('default')) fns.set('default', d as never);
  return fns;
}
const functions = functionsOf(exportsOf);

ForkingClient.setSpares(Number(sparesArg) || 0);
await ForkingClient.ready();
ForkingClient.enterForkLoop(); // returns only in a child

// ---- a child ----
Client.sandboxMeHere();
const comms = new SyncComms();
for (;;) {
  let req: CallRequest;
  try {
    req = comms.recvMessage<CallRequest>();
  } catch (err) {
    if (err instanceof CommsError && err.code === 'PEER_CLOSED') process.exit(0);
    throw err;
  }
  const buffers: SharedBuffer[] = [];
  const fds: number[] = [];
  const attached: Array<Buffer | number> = [];
  let reply: CallReply;
  let out: Attachment[] = [];
  try {
    const kinds = String(req.kinds ?? '');
    for (let i = 0; i < req.buffers; i++) {
      if (kinds[i] === 'f') {
        const fd = comms.recvFd();
        fds.push(fd);
        attached.push(fd);
      } else {
        const b = comms.recvBuffer();
        buffers.push(b);
        attached.push(Buffer.from(b.arrayBuffer, 0, b.size));
      }
    }
    if (importError) reply = { ok: false, error: importError };
    else if (req.describe) reply = { ok: true, value: [...functions.keys()], buffers: 0 };
    else {
      const fn = functions.get(req.fn);
      if (!fn)
        throw Object.assign(new TypeError(`the module has no exported function "${req.fn}"`), {
          code: 'NO_SUCH_FUNCTION',
        });
      const args = restoreBuffers(req.args, attached) as unknown[];
      const value = await fn(...args);
      out = [];
      reply = { ok: true, value: extractBuffers(value, threshold, out), buffers: out.length };
    }
  } catch (err) {
    reply = { ok: false, error: errorInfo(err) };
    out = [];
  }
  send(reply, out);
  for (const b of buffers) b.close();
  for (const fd of fds) closeSync(fd); // an fd is the call's: a module that keeps it dup()s it
}

function send(reply: CallReply, out: Attachment[]): void {
  try {
    comms.sendMessage(reply);
  } catch (err) {
    if (err instanceof CommsError && err.code === 'IO') throw err;
    // a value msgpack cannot carry (a function, a symbol...): say so instead
    comms.sendMessage({ ok: false, error: { ...errorInfo(err), code: 'BAD_RESULT' } });
    return;
  }
  for (const bytes of out) {
    if (bytes instanceof PassFd) throw new Error('unreachable: a reply never carries fds');
    if (bytes instanceof SharedBuffer) {
      comms.sendBuffer(bytes);
      continue;
    }
    const sb = SharedBuffer.create(bytes.byteLength);
    sb.bytes.set(bytes);
    comms.sendBuffer(sb);
    sb.close();
  }
}
