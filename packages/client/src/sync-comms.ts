// sync-comms.ts: the synchronous Comms of the sandboxee side, straight onto libsbx_comms (so C
// and Node sandboxees share one implementation). Blocks the calling thread until done.
import * as codec from './codec.js';
import { acceptAnnounced, type RecvBufferOptions, type SharedBuffer } from './buffer.js';
import { CommsError, type CommsErrorCode } from './errors.js';
import { closeQuietly, native, type NativeErrnoError } from './native.js';
import { DEFAULT_COMMS_FD, DEFAULT_MAX_MESSAGE_SIZE, PROTOCOL_VERSION, Tag, tagName } from './tags.js';

export interface RecvBytesOptions {
  /**
   * A buffer the payload is read into when it fits (no new memory: a fresh Buffer per message is
   * fresh pages, which the kernel zeroes and faults in on every receive). The result is then a
   * Buffer over `into`'s first bytes, valid until `into` is reused; a longer payload arrives in
   * a new Buffer as without `into`. After an error its contents are unspecified.
   */
  into?: Uint8Array;
}

export interface SyncCommsOptions {
  /** Incoming messages above this many bytes are refused. Default 64 MiB. */
  maxMessageSize?: number;
}

/** The comms fd a sandboxee was given: $SBX_COMMS_FD, else 1023. */
export function defaultCommsFd(): number {
  const env = process.env.SBX_COMMS_FD;
  if (env === undefined || env === '') return DEFAULT_COMMS_FD;
  const fd = Number(env);
  if (!Number.isInteger(fd) || fd < 0) throw new TypeError(`SBX_COMMS_FD must be a non-negative integer, got "${env}"`);
  return fd;
}

/** A blocking Comms channel on `fd` (borrowed until close()). */
export class SyncComms {
  readonly fd: number;
  private readonly maxMessageSize: number;
  private closed = false;

  constructor(fd: number = defaultCommsFd(), options: SyncCommsOptions = {}) {
    if (!Number.isInteger(fd) || fd < 0) throw new TypeError(`SyncComms: fd must be a non-negative integer, got ${fd}`);
    this.fd = fd;
    this.maxMessageSize = options.maxMessageSize ?? DEFAULT_MAX_MESSAGE_SIZE;
  }

  sendTLV(tag: number, data: Uint8Array = Buffer.alloc(0)): void {
    codec.checkTag(tag);
    this.call(() => native().commsSend(this.fd, tag, codec.toBuffer(data, 'sendTLV')));
  }

  recvTLV(tag?: number, into?: Uint8Array): { tag: number; data: Buffer } {
    const m = this.call(() => native().commsRecv(this.fd, this.maxMessageSize, into));
    if (m.fd >= 0) {
      closeQuietly(m.fd);
      if (tag !== Tag.Fd) throw codec.tagMismatch(tag ?? 0, Tag.Fd);
    }
    if (tag !== undefined && m.tag !== tag) throw codec.tagMismatch(tag, m.tag);
    const data = m.data ?? Buffer.from(into!.buffer, into!.byteOffset, m.length);
    return { tag: m.tag, data };
  }

  sendBool(v: boolean) {
    this.sendTLV(Tag.Bool, codec.encodeBool(v));
  }
  recvBool() {
    return codec.decodeBool(this.payload(Tag.Bool));
  }
  sendInt8(v: number) {
    this.sendTLV(Tag.Int8, codec.encodeInt('Int8', v));
  }
  recvInt8() {
    return codec.decodeInt('Int8', this.payload(Tag.Int8));
  }
  sendUint8(v: number) {
    this.sendTLV(Tag.Uint8, codec.encodeInt('Uint8', v));
  }
  recvUint8() {
    return codec.decodeInt('Uint8', this.payload(Tag.Uint8));
  }
  sendInt16(v: number) {
    this.sendTLV(Tag.Int16, codec.encodeInt('Int16', v));
  }
  recvInt16() {
    return codec.decodeInt('Int16', this.payload(Tag.Int16));
  }
  sendUint16(v: number) {
    this.sendTLV(Tag.Uint16, codec.encodeInt('Uint16', v));
  }
  recvUint16() {
    return codec.decodeInt('Uint16', this.payload(Tag.Uint16));
  }
  sendInt32(v: number) {
    this.sendTLV(Tag.Int32, codec.encodeInt('Int32', v));
  }
  recvInt32() {
    return codec.decodeInt('Int32', this.payload(Tag.Int32));
  }
  sendUint32(v: number) {
    this.sendTLV(Tag.Uint32, codec.encodeInt('Uint32', v));
  }
  recvUint32() {
    return codec.decodeInt('Uint32', this.payload(Tag.Uint32));
  }
  sendInt64(v: bigint | number) {
    this.sendTLV(Tag.Int64, codec.encodeBig('Int64', v));
  }
  recvInt64() {
    return codec.decodeBig('Int64', this.payload(Tag.Int64));
  }
  sendUint64(v: bigint | number) {
    this.sendTLV(Tag.Uint64, codec.encodeBig('Uint64', v));
  }
  recvUint64() {
    return codec.decodeBig('Uint64', this.payload(Tag.Uint64));
  }
  sendString(s: string) {
    this.sendTLV(Tag.String, codec.encodeString(s));
  }
  recvString() {
    return codec.decodeString(this.payload(Tag.String));
  }
  sendBytes(b: Uint8Array) {
    this.sendTLV(Tag.Bytes, codec.toBuffer(b, 'sendBytes'));
  }
  /** A Bytes payload; with `into`, read into the caller's reusable buffer when it fits. */
  recvBytes(options: RecvBytesOptions = {}): Buffer {
    const into = options.into;
    if (into !== undefined && !(into instanceof Uint8Array))
      throw new TypeError('recvBytes: options.into must be a Uint8Array (or Buffer)');
    return this.recvTLV(Tag.Bytes, into).data;
  }
  sendMessage(value: unknown) {
    this.sendTLV(Tag.Msgpack, codec.encodeMessage(value));
  }
  recvMessage<T = unknown>(): T {
    return codec.decodeMessage(this.payload(Tag.Msgpack)) as T;
  }

  /** Sends `fd` (borrowed). */
  sendFd(fd: number): void {
    if (!Number.isInteger(fd) || fd < 0) throw new TypeError(`sendFd: fd must be a non-negative integer, got ${fd}`);
    this.call(() => native().commsSendFd(this.fd, fd));
  }

  /** Receives an fd (CLOEXEC) that the caller owns. */
  recvFd(): number {
    const m = this.call(() => native().commsRecv(this.fd, this.maxMessageSize));
    if (m.tag !== Tag.Fd) throw codec.tagMismatch(Tag.Fd, m.tag);
    return m.fd;
  }

  /** Sends a shared buffer: a Uint64 message (its size), then an Fd message (its memfd, borrowed). */
  sendBuffer(buf: SharedBuffer): void {
    const fd = buf.fd;
    this.sendUint64(buf.size);
    this.sendFd(fd);
  }

  /** Receives a shared buffer (Uint64 size, then Fd) and maps it: see SharedBuffer.fromFd for the
   *  checks (BufferError). The received fd is closed on any refusal. */
  recvBuffer(options: RecvBufferOptions = {}): SharedBuffer {
    const announced = this.recvUint64();
    const fd = this.recvFd();
    return acceptAnnounced(announced, fd, options);
  }

  barrier(): void {
    this.sendTLV(Tag.Barrier);
    this.payload(Tag.Barrier);
  }

  sendVersion() {
    this.sendTLV(Tag.Version, codec.encodeInt('Uint32', PROTOCOL_VERSION));
  }
  recvVersion(): number {
    const v = codec.decodeInt('Uint32', this.payload(Tag.Version));
    if (v !== PROTOCOL_VERSION)
      throw new CommsError('IO', `Comms: the peer speaks protocol version ${v}, this side ${PROTOCOL_VERSION}`);
    return v;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    closeQuietly(this.fd);
  }

  private payload(tag: number): Buffer {
    return this.recvTLV(tag).data;
  }

  private call<T>(fn: () => T): T {
    if (this.closed) throw new CommsError('CLOSED', 'Comms: the channel was closed by this side');
    try {
      return fn();
    } catch (err) {
      if (err instanceof TypeError) throw err;
      throw fromNative(err as NativeErrnoError);
    }
  }
}

/** libsbx_comms's documented errors as CommsError codes. */
function fromNative(e: NativeErrnoError): CommsError {
  const codes: Record<string, CommsErrorCode> = {
    EPIPE: 'PEER_CLOSED',
    ECONNRESET: 'PEER_CLOSED',
    EPROTO: 'UNEXPECTED_FD',
    EMSGSIZE: 'MESSAGE_TOO_LARGE',
    EBADMSG: 'BAD_SIZE',
  };
  let code = codes[e.code] ?? 'IO';
  let message = `Comms: ${e.message}`;
  if (e.code === 'EPROTO') {
    code = 'TRUNCATED';
    message = `Comms: the stream is broken (${e.message}): the peer closed inside a message or sent a misplaced fd`;
  }
  if (e.code === 'EMSGSIZE' && e.lastTag)
    message = `Comms: a ${tagName(e.lastTag)} message is above the limit (maxMessageSize)`;
  return new CommsError(code, message, { cause: e, errno: e.errno });
}
