// runner.ts: the program a sandboxed module's forkserver runs (started by sandboxedModule() as
// `node --single-threaded --v8-pool-size=1 runner.js <module URL> <spares> <threshold>`).
// It imports the module once, warms up, and serves fork requests; each child sandboxes itself
// (the policy the executor serves it) and then answers calls on its Comms channel until the
// executor closes it: one call in 'call' mode, any number in 'session' mode.
import { Client, CommsError, ForkingClient, SharedBuffer, SyncComms } from '@sbx/client';
import { native } from '@sbx/client/internal';
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

type Fn = (...args: unknown[]) => unknown;
const WARM_CALLS = 3;
const warmFunctions = new Map<string, Fn>([['warm', (...args: unknown[]) => args]]);

// The request path run once before any request: a child's first call would otherwise pay for
// V8 compiling it and for the first writes to memory it shares with the forkserver (each a
// page copy), in every child. The forkserver runs it once (compiled code for every child), and
// every child again right after its fork (a spare: ahead of its request). It runs sbx's code
// only, with fixed data, over a socketpair of its own that it closes: no module code runs and
// nothing of it but compiled code and touched memory remains.
warmRequestPath();
ForkingClient.onChildForked(warmRequestPath);

ForkingClient.setSpares(Number(sparesArg) || 0);
await ForkingClient.ready();
ForkingClient.enterForkLoop(); // returns only in a child

// ---- a child ----
Client.sandboxMeHere();
const comms = new SyncComms();
for (;;) {
  let more = serveOne(comms, functions);
  if (typeof more !== 'boolean') more = await more;
  if (!more) process.exit(0);
}

/** What came with one request. */
interface Received {
  req: CallRequest;
  buffers: SharedBuffer[];
  fds: number[];
}

/**
 * Receives one request on `comms`, runs it, sends the reply. False when the executor closed the
 * channel. Synchronous unless the function returns a promise (or another thenable).
 */
function serveOne(comms: SyncComms, fns: ReadonlyMap<string, Fn>): boolean | Promise<boolean> {
  let req: CallRequest;
  try {
    req = comms.recvMessage<CallRequest>();
  } catch (err) {
    if (err instanceof CommsError && err.code === 'PEER_CLOSED') return false;
    throw err;
  }
  const got: Received = { req, buffers: [], fds: [] };
  let value: unknown;
  try {
    value = run(comms, got, fns);
    if (value !== null && (typeof value === 'object' || typeof value === 'function')) {
      const then = (value as { then?: unknown }).then;
      if (typeof then === 'function')
        return Promise.resolve(value).then(
          (v) => answer(comms, got, v),
          (err: unknown) => fail(comms, got, err),
        );
    }
  } catch (err) {
    return fail(comms, got, err);
  }
  return answer(comms, got, value);
}

/** Takes the request's attachments and calls its function (or describes the module). */
function run(comms: SyncComms, got: Received, fns: ReadonlyMap<string, Fn>): unknown {
  const { req } = got;
  const attached: Array<Buffer | number> = [];
  const kinds = String(req.kinds ?? '');
  for (let i = 0; i < req.buffers; i++) {
    if (kinds[i] === 'f') {
      const fd = comms.recvFd();
      got.fds.push(fd);
      attached.push(fd);
    } else {
      const b = comms.recvBuffer();
      got.buffers.push(b);
      attached.push(Buffer.from(b.arrayBuffer, 0, b.size));
    }
  }
  if (importError) throw importError;
  if (req.describe) return [...fns.keys()];
  const fn = fns.get(req.fn);
  if (!fn)
    throw Object.assign(new TypeError(`the module has no exported function "${req.fn}"`), {
      code: 'NO_SUCH_FUNCTION',
    });
  return fn(...(restoreBuffers(req.args, attached) as unknown[]));
}

function answer(comms: SyncComms, got: Received, value: unknown): true {
  const out: Attachment[] = [];
  let reply: CallReply;
  try {
    reply = { ok: true, value: extractBuffers(value, threshold, out), buffers: out.length };
  } catch (err) {
    return fail(comms, got, err);
  }
  send(comms, reply, out);
  release(got);
  return true;
}

function fail(comms: SyncComms, got: Received, err: unknown): true {
  const error = importError !== null && err === importError ? importError : errorInfo(err);
  send(comms, { ok: false, error }, []);
  release(got);
  return true;
}

/** The call's attachments end with it: a module that keeps an fd dup()s it. */
function release(got: Received): void {
  for (const b of got.buffers) b.close();
  for (const fd of got.fds) closeSync(fd);
}

function send(comms: SyncComms, reply: CallReply, out: Attachment[]): void {
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

/** Runs serveOne() on requests like a call's (and an unknown function's), both ends here. */
function warmRequestPath(): void {
  const [a, b] = native().socketpair(false, false);
  const caller = new SyncComms(a);
  const callee = new SyncComms(b);
  try {
    for (let i = 0; i < WARM_CALLS; i++) {
      caller.sendMessage({ fn: 'warm', args: [i, 'two', { x: 1.5, ok: true, none: null }], buffers: 0, kinds: '' });
      serveOne(callee, warmFunctions);
      caller.recvMessage();
      caller.sendMessage({ fn: 'none', args: [], buffers: 0, kinds: '' });
      serveOne(callee, warmFunctions);
      caller.recvMessage();
    }
  } finally {
    caller.close();
    callee.close();
  }
}
