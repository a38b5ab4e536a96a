// comms.ts: the asynchronous Comms channel (Promises, on Node's event loop, never blocking it).
// The executor uses it to talk to sandboxees and to the forkserver; sandboxees may use it too.
import * as codec from './codec.js';
import { acceptAnnounced, type RecvBufferOptions, type SharedBuffer } from './buffer.js';
import { Decoder, type Message } from './decoder.js';
import { CommsError } from './errors.js';
import { Inbox, QueueCount, queueLimits, type QueueLimits } from './inbox.js';
import { closeQuietly, native, type NativeErrnoError, type NativeWatcher } from './native.js';
import { DEFAULT_MAX_MESSAGE_SIZE, HEADER_SIZE, PROTOCOL_VERSION, Tag, tagName } from './tags.js';
import { type Status, decodeStatus, encodeStatus } from './status.js';

export interface CommsOptions extends Partial<QueueLimits> {
  /** Incoming messages above this many bytes are refused (MESSAGE_TOO_LARGE). Default 64 MiB. */
  maxMessageSize?: number;
}

interface Waiter {
  resolve: (m: Message) => void;
  reject: (e: Error) => void;
}

interface Outgoing {
  buf: Buffer;
  off: number;
  fd: number; // sent with the first byte, then -1
  done?: () => void;
  fail?: (e: Error) => void;
}

const READ_CHUNK = 256 * 1024;
/** Bytes read per readiness callback at most: a peer that writes without pause cannot hold the
 *  event loop (the poll is level-triggered, so the rest is read on the next turn). */
const READ_BUDGET = 4 * READ_CHUNK;

/**
 * One end of a Comms channel over a unix stream socket. Takes ownership of `fd` (made
 * non-blocking) and closes it on close(). Receives are answered in call order; a message handler
 * (onMessage) takes every message instead, for dispatching peers such as the forkserver.
 *
 * Backpressure: messages received but not yet taken by a recv*() are bounded by maxQueuedBytes,
 * maxQueuedMessages and maxQueuedFds. Reads are sized to the room left, so the message count is
 * never passed, the bytes by at most one message (a message is always taken whole) and the fds
 * by what one read brings (at most 16). While a bound is reached the socket is not read: the
 * kernel's socket buffer fills and the peer's writes block.
 */
export class Comms {
  readonly fd: number;
  private readonly maxMessageSize: number;
  private readonly limits: QueueLimits;
  private readonly decoder: Decoder;
  private readonly watcher: NativeWatcher;
  private readonly inbox = new Inbox();
  /** Not reading: the inbox is full. */
  private paused = false;
  /** The inbox and decoder were emptied (their fds closed): close() ran. */
  private disposed = false;
  private readonly waiters: Waiter[] = [];
  private readonly outbox: Outgoing[] = [];
  private handler: ((m: Message) => void) | null = null;
  private errorHandler: ((e: Error) => void) | null = null;
  private failure: Error | null = null;
  private closed = false;
  private writing = false;
  private readBuf: Buffer | null = null;
  private readonly watchTarget: { comms: Comms | null };

  constructor(fd: number, options: CommsOptions = {}) {
    if (!Number.isInteger(fd) || fd < 0) throw new TypeError(`Comms: fd must be a non-negative integer, got ${fd}`);
    const max = options.maxMessageSize ?? DEFAULT_MAX_MESSAGE_SIZE;
    if (!Number.isSafeInteger(max) || max < 0 || max > 2 ** 32)
      throw new TypeError(`Comms: maxMessageSize must be an integer in 0..2^32, got ${max}`);
    this.limits = queueLimits(options);
    this.fd = fd;
    this.maxMessageSize = max;
    const n = native();
    n.setNonBlocking(fd, true);
    this.decoder = new Decoder(max, (f) => closeQuietly(f));
    // The native watcher holds its callback strongly (a GC root) until the watcher object itself
    // is collected, which it never is while the callback reaches this Comms (which holds the
    // watcher). So the callback reaches this Comms only through `target`, emptied on close: a
    // closed Comms, its decoder and its 256 KiB read buffer can then be collected.
    const target: { comms: Comms | null } = { comms: this };
    this.watchTarget = target;
    this.watcher = new n.Watcher(fd, (readable, writable) => {
      const self = target.comms;
      if (!self) return;
      if (readable) self.onReadable();
      if (writable) self.flush();
    });
    this.watcher.start(true, false);
  }

  /**
   * Connects to a listening unix socket (Sandbox2's Comms(socket_name)): a path, or
   * { abstract: name } for the abstract namespace. Never waits: a listener whose backlog is full
   * fails with CommsError IO (EAGAIN), like one that is not there (ENOENT / ECONNREFUSED).
   */
  static connect(address: UnixAddress, options?: CommsOptions): Comms {
    const { name, abstract } = unixAddress(address, 'Comms.connect');
    let fd: number;
    try {
      fd = native().unixConnect(name, abstract);
    } catch (e) {
      throw addressError(`Comms.connect(${describeAddress(address)})`, e);
    }
    return new Comms(fd, options);
  }

  /** A connected pair: [ours, theirs fd]. `theirs` is a plain blocking fd to hand to a peer. */
  static pair(options?: CommsOptions): [Comms, number] {
    const [a, b] = native().socketpair(false, false);
    return [new Comms(a, options), b];
  }

  /** Lets the process exit while this channel is idle (it stays open). */
  unref(): this {
    this.watcher.unref();
    return this;
  }

  ref(): this {
    this.watcher.ref();
    return this;
  }

  /** Delivers every incoming message to `handler` instead of recv*(). `onError` gets the failure that ends the channel. */
  onMessage(handler: (m: Message) => void, onError: (e: Error) => void): void {
    this.handler = handler;
    this.errorHandler = onError;
    for (const m of this.inbox.takeAll()) handler(m);
    this.updateReading();
  }

  // ---- raw TLVs ----

  sendTLV(tag: number, data: Uint8Array = Buffer.alloc(0)): Promise<void> {
    codec.checkTag(tag);
    const payload = codec.toBuffer(data, 'sendTLV');
    if (payload.length < 65536) {
      const buf = Buffer.allocUnsafe(HEADER_SIZE + payload.length);
      codec.encodeHeader(tag, payload.length, buf);
      payload.copy(buf, HEADER_SIZE);
      return this.enqueue(buf, -1);
    }
    // The header's promise settles with the payload's; only the payload's is returned.
    this.enqueue(codec.encodeHeader(tag, payload.length), -1).catch(() => {});
    return this.enqueue(payload, -1);
  }

  /**
   * Sends a request and returns the reply (Sandbox2's send-then-receive pairs): the next message,
   * of `replyTag` when given (TAG_MISMATCH otherwise).
   */
  async exchangeTLV(tag: number, data: Uint8Array, replyTag?: number): Promise<{ tag: number; data: Buffer }> {
    await this.sendTLV(tag, data);
    return this.recvTLV(replyTag);
  }

  /** Who the peer is (SO_PEERCRED): its pid, uid and gid when it connected or made the pair, as this side's namespaces see them. */
  peerCredentials(): { pid: number; uid: number; gid: number } {
    if (this.closed) throw new CommsError('CLOSED', 'Comms.peerCredentials: the channel is closed');
    try {
      return native().peerCred(this.fd);
    } catch (e) {
      throw addressError('Comms.peerCredentials', e);
    }
  }

  /** The next message, whatever its tag; an Fd message carries its fd (the caller owns it), others fd -1. */
  recvAny(): Promise<Message> {
    return this.next();
  }

  /** The next message of `tag` (TAG_MISMATCH on another), or of any tag when `tag` is omitted.
   *  An Fd message's fd is closed here: use recvFd() or recvAny() for fds. */
  async recvTLV(tag?: number): Promise<{ tag: number; data: Buffer }> {
    const m = await this.next();
    if (m.tag === Tag.Fd) {
      closeQuietly(m.fd);
      if (tag !== Tag.Fd) throw codec.tagMismatch(tag ?? 0, Tag.Fd);
    }
    if (tag !== undefined && m.tag !== tag) throw codec.tagMismatch(tag, m.tag);
    return { tag: m.tag, data: m.data };
  }

  // ---- typed values ----

  sendBool(v: boolean) {
    return this.sendTLV(Tag.Bool, codec.encodeBool(v));
  }
  async recvBool() {
    return codec.decodeBool(await this.payload(Tag.Bool));
  }
  sendInt8(v: number) {
    return this.sendTLV(Tag.Int8, codec.encodeInt('Int8', v));
  }
  async recvInt8() {
    return codec.decodeInt('Int8', await this.payload(Tag.Int8));
  }
  sendUint8(v: number) {
    return this.sendTLV(Tag.Uint8, codec.encodeInt('Uint8', v));
  }
  async recvUint8() {
    return codec.decodeInt('Uint8', await this.payload(Tag.Uint8));
  }
  sendInt16(v: number) {
    return this.sendTLV(Tag.Int16, codec.encodeInt('Int16', v));
  }
  async recvInt16() {
    return codec.decodeInt('Int16', await this.payload(Tag.Int16));
  }
  sendUint16(v: number) {
    return this.sendTLV(Tag.Uint16, codec.encodeInt('Uint16', v));
  }
  async recvUint16() {
    return codec.decodeInt('Uint16', await this.payload(Tag.Uint16));
  }
  sendInt32(v: number) {
    return this.sendTLV(Tag.Int32, codec.encodeInt('Int32', v));
  }
  async recvInt32() {
    return codec.decodeInt('Int32', await this.payload(Tag.Int32));
  }
  sendUint32(v: number) {
    return this.sendTLV(Tag.Uint32, codec.encodeInt('Uint32', v));
  }
  async recvUint32() {
    return codec.decodeInt('Uint32', await this.payload(Tag.Uint32));
  }
  sendInt64(v: bigint | number) {
    return this.sendTLV(Tag.Int64, codec.encodeBig('Int64', v));
  }
  async recvInt64() {
    return codec.decodeBig('Int64', await this.payload(Tag.Int64));
  }
  sendUint64(v: bigint | number) {
    return this.sendTLV(Tag.Uint64, codec.encodeBig('Uint64', v));
  }
  async recvUint64() {
    return codec.decodeBig('Uint64', await this.payload(Tag.Uint64));
  }
  sendString(s: string) {
    return this.sendTLV(Tag.String, codec.encodeString(s));
  }
  async recvString() {
    return codec.decodeString(await this.payload(Tag.String));
  }
  sendBytes(b: Uint8Array) {
    return this.sendTLV(Tag.Bytes, codec.toBuffer(b, 'sendBytes'));
  }
  recvBytes(): Promise<Buffer> {
    return this.payload(Tag.Bytes);
  }
  /** A structured value, msgpack-encoded (msgpackr, plain msgpack without extensions). */
  sendMessage(value: unknown) {
    return this.sendTLV(Tag.Msgpack, codec.encodeMessage(value));
  }
  async recvMessage<T = unknown>(): Promise<T> {
    return codec.decodeMessage(await this.payload(Tag.Msgpack)) as T;
  }

  /** Sends `fd` (borrowed: the caller may close it once the promise resolves). */
  /** A status (Sandbox2's SendStatus): { code: 'OK' | 'NOT_FOUND' | ..., message }. */
  sendStatus(status: Status): Promise<void> {
    return this.sendTLV(Tag.Status, encodeStatus(status));
  }
  /** The next message as a Status (BAD_SIZE when truncated or of an unknown code, BAD_UTF8). */
  async recvStatus(): Promise<Status> {
    return decodeStatus(await this.payload(Tag.Status));
  }

  sendFd(fd: number): Promise<void> {
    if (!Number.isInteger(fd) || fd < 0) throw new TypeError(`sendFd: fd must be a non-negative integer, got ${fd}`);
    return this.enqueue(codec.encodeHeader(Tag.Fd, 0), fd);
  }

  /** Receives an fd (CLOEXEC); the caller owns it. */
  async recvFd(): Promise<number> {
    const m = await this.next();
    if (m.tag !== Tag.Fd) throw codec.tagMismatch(Tag.Fd, m.tag);
    return m.fd;
  }

  /** Sends a shared buffer: a Uint64 message (its size), then an Fd message (its memfd,
   *  borrowed: keep the buffer open until the promise resolves). */
  sendBuffer(buf: SharedBuffer): Promise<void> {
    const fd = buf.fd;
    this.sendUint64(buf.size).catch(() => {});
    return this.sendFd(fd);
  }

  /** Receives a shared buffer (Uint64 size, then Fd) and maps it: see SharedBuffer.fromFd for the
   *  checks (BufferError). The received fd is closed on any refusal. */
  async recvBuffer(options: RecvBufferOptions = {}): Promise<SharedBuffer> {
    const announced = await this.recvUint64();
    const fd = await this.recvFd();
    return acceptAnnounced(announced, fd, options);
  }

  /** Both sides call it: resolves once the peer has reached its barrier too. */
  async barrier(): Promise<void> {
    await this.sendTLV(Tag.Barrier);
    await this.payload(Tag.Barrier);
  }

  sendVersion() {
    return this.sendTLV(Tag.Version, codec.encodeInt('Uint32', PROTOCOL_VERSION));
  }
  async recvVersion(): Promise<number> {
    const v = codec.decodeInt('Uint32', await this.payload(Tag.Version));
    if (v !== PROTOCOL_VERSION)
      throw new CommsError('IO', `Comms: the peer speaks protocol version ${v}, this side ${PROTOCOL_VERSION}`);
    return v;
  }

  /** Closes the channel (and the fd) and every received fd not taken yet. Pending receives
   *  reject with CLOSED. Idempotent; also after the channel failed. */
  close(): void {
    this.setFailure(new CommsError('CLOSED', 'Comms: the channel was closed by this side'));
    if (this.disposed) return;
    this.disposed = true;
    this.decoder.dispose();
    for (const m of this.inbox.takeAll()) if (m.fd >= 0) closeQuietly(m.fd);
  }

  get isClosed(): boolean {
    return this.closed;
  }

  // ---- internals ----

  private async payload(tag: number): Promise<Buffer> {
    return (await this.recvTLV(tag)).data;
  }

  private next(): Promise<Message> {
    const m = this.inbox.shift();
    if (m) {
      if (this.paused) this.updateReading();
      return Promise.resolve(m);
    }
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  /** @internal Calls `fn` once, when the next message arrives (a fork trace's first reply). */
  onNextMessage(fn: () => void): void {
    this.nextMessageHook = fn;
  }
  private nextMessageHook: (() => void) | null = null;

  private deliver(m: Message): void {
    if (this.nextMessageHook) {
      const fn = this.nextMessageHook;
      this.nextMessageHook = null;
      fn();
    }
    if (this.disposed) {
      // close() ran (e.g. from a handler of an earlier message of the same read): nobody takes it.
      if (m.fd >= 0) closeQuietly(m.fd);
      return;
    }
    if (this.handler) {
      this.handler(m);
      return;
    }
    const w = this.waiters.shift();
    if (w) w.resolve(m);
    else this.inbox.push(m);
  }

  private setFailure(err: Error): void {
    if (this.failure) return;
    this.failure = err;
    for (const w of this.waiters.splice(0)) w.reject(err);
    for (const o of this.outbox.splice(0)) o.fail?.(err);
    if (!this.closed) {
      this.watcher.close();
      this.watchTarget.comms = null;
      this.closed = true;
      closeQuietly(this.fd);
    }
    // fds of a message in progress die with the stream; whole messages stay takeable until close().
    this.decoder.dispose();
    this.errorHandler?.(err);
  }

  /** How much one read may take so that it cannot complete more messages or payload bytes than
   *  the inbox has room for (every message is at least a header). */
  private readRoom(read: QueueCount): number {
    if (this.handler) return READ_CHUNK;
    const q = this.inbox.count;
    const messages = (this.limits.maxQueuedMessages - q.messages - read.messages) * HEADER_SIZE;
    const bytes = this.limits.maxQueuedBytes - q.bytes - read.bytes + HEADER_SIZE;
    return Math.max(HEADER_SIZE, Math.min(READ_CHUNK, messages, bytes));
  }

  /** Reads while the inbox has room; stops (the peer then blocks) while it is full. */
  private updateReading(): void {
    if (this.closed) return;
    const full = this.inbox.count.reaches(this.limits);
    if (full === this.paused) return;
    this.paused = full;
    this.watcher.start(!full, this.writing);
  }

  private onReadable(): void {
    if (this.closed || this.paused) return;
    const n = native();
    const out: Message[] = [];
    const read = new QueueCount(); // what `out` will add to the inbox
    let failure: CommsError | null = null;
    try {
      let budget = READ_BUDGET;
      while (budget > 0 && (this.handler !== null || !this.inbox.count.reaches(this.limits, read))) {
        const direct = this.decoder.directTarget();
        const from = out.length;
        let r: ReturnType<typeof n.recvmsg>;
        if (direct) {
          r = n.recvmsg(this.fd, direct.buf, direct.offset, direct.length);
          if (r.bytes > 0) this.decoder.feedDirect(r.bytes, r.fds, out);
        } else {
          this.readBuf ??= Buffer.allocUnsafe(READ_CHUNK);
          r = n.recvmsg(this.fd, this.readBuf, 0, this.readRoom(read));
          if (r.bytes > 0) this.decoder.feed(this.readBuf.subarray(0, r.bytes), r.fds, out);
        }
        for (let i = from; i < out.length; i++) read.add(out[i]!);
        // MSG_CTRUNC: the kernel dropped (and released) the fds that did not fit; those that did
        // went to the decoder, which closes them on the failure below.
        if (r.ctrunc)
          throw new CommsError('UNEXPECTED_FD', 'Comms: the peer sent more fds in one message than can be received');
        if (r.bytes === 0) {
          r.fds.forEach(closeQuietly);
          this.decoder.end();
        }
        if (r.bytes < 0) break; // EAGAIN: drained
        // A short read does not mean drained: a unix stream recvmsg stops where the next message
        // carries fds (SCM_RIGHTS), so reading on until EAGAIN is what sees it (test/escape/tty).
        // Stopping after a short read without fds (to save the read that returns EAGAIN, ~20 µs)
        // was tried and reverted: a peer that wrote one message and closed then left a handshake
        // waiting forever, 1 run in ~10 (the EOF behind the data was never read).
        budget -= r.bytes;
      }
    } catch (err) {
      failure = err instanceof CommsError ? err : ioError(err, 'recvmsg');
    }
    for (const m of out) this.deliver(m);
    if (failure) this.setFailure(failure);
    else this.updateReading();
  }

  private enqueue(buf: Buffer, fd: number): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.outbox.push({ buf, off: 0, fd, done: resolve, fail: reject });
      if (!this.writing) this.flush();
    });
  }

  private flush(): void {
    if (this.closed) return;
    const n = native();
    try {
      while (this.outbox.length > 0) {
        const o = this.outbox[0]!;
        const wrote = n.sendmsg(this.fd, o.buf, o.off, o.buf.length - o.off, o.fd);
        if (wrote < 0) {
          if (!this.writing) {
            this.writing = true;
            this.watcher.start(!this.paused, true);
          }
          return;
        }
        o.fd = -1;
        o.off += wrote;
        if (o.off === o.buf.length) {
          this.outbox.shift();
          o.done?.();
        }
      }
      if (this.writing) {
        this.writing = false;
        this.watcher.start(!this.paused, false);
      }
    } catch (err) {
      this.setFailure(ioError(err, 'sendmsg'));
    }
  }
}

function ioError(err: unknown, call: string): CommsError {
  const e = err as NativeErrnoError;
  if (e && (e.code === 'EPIPE' || e.code === 'ECONNRESET')) {
    return new CommsError('PEER_CLOSED', `Comms: the peer closed the channel (${call}: ${e.code})`, {
      cause: err,
      errno: e.errno,
    });
  }
  return new CommsError('IO', `Comms: ${e?.message ?? String(err)}`, { cause: err, errno: e?.errno });
}

export { tagName };

/** A unix socket address: a filesystem path, or a name in the abstract namespace. */
export type UnixAddress = string | { readonly path: string } | { readonly abstract: string };

/** sun_path holds 108 bytes: a path and its NUL, or a NUL and an abstract name. */
const SUN_PATH_MAX = 107;

/** @internal The address as the native side takes it, after the checks that name what is wrong. */
export function unixAddress(address: UnixAddress, method: string): { name: string; abstract: boolean } {
  let name: unknown;
  let abstract = false;
  if (typeof address === 'string') name = address;
  else if (address && typeof address === 'object' && 'abstract' in address) {
    name = address.abstract;
    abstract = true;
  } else if (address && typeof address === 'object' && 'path' in address) name = address.path;
  else throw new TypeError(`${method}: the address is a path or { abstract: name }, got ${String(address)}`);
  if (typeof name !== 'string' || name.length === 0)
    throw new TypeError(`${method}: the ${abstract ? 'abstract name' : 'path'} must be a non-empty string`);
  if (name.includes('\0'))
    throw new TypeError(`${method}: the ${abstract ? 'abstract name' : 'path'} contains a NUL byte`);
  if (Buffer.byteLength(name) > SUN_PATH_MAX)
    throw new TypeError(
      `${method}: the ${abstract ? 'abstract name' : 'path'} is ${Buffer.byteLength(name)} bytes; a unix socket address holds ${SUN_PATH_MAX}`,
    );
  return { name, abstract };
}

/** @internal */
export function describeAddress(address: UnixAddress): string {
  return JSON.stringify(address);
}

/** @internal A native errno failure as CommsError IO. */
export function addressError(what: string, e: unknown): CommsError {
  const err = e as NativeErrnoError;
  return new CommsError('IO', `${what}: ${err.code ?? ''} ${err.message}`.trim(), { cause: e, errno: err.errno });
}
