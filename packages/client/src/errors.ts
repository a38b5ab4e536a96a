/** Base class of every error sbx throws on purpose. `code` is stable; messages may change. */
export class SbxError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }

  /**
   * The error as JSON: { name, code, message } plus its own fields (errno, problems, ...), bigints
   * as decimal strings, a cause as its own JSON. No stack: it names paths of this host.
   */
  toJSON(): Record<string, unknown> {
    const out: Record<string, unknown> = { name: this.name, code: this.code, message: this.message };
    for (const [k, v] of Object.entries(this)) if (!(k in out) && k !== 'cause') out[k] = jsonSafe(v);
    if (this.cause !== undefined) out.cause = errorToJSON(this.cause);
    return out;
  }
}

/** Any thrown value as a plain JSON-safe object: an SbxError's toJSON(), else { name, message,
 *  code? } of an Error, else { message: String(value) }. */
export function errorToJSON(err: unknown): Record<string, unknown> {
  if (err instanceof SbxError) return err.toJSON();
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return { name: err.name, message: err.message, ...(typeof code === 'string' ? { code } : {}) };
  }
  return { message: String(err) };
}

function jsonSafe(v: unknown): unknown {
  if (typeof v === 'bigint') return v.toString();
  if (Array.isArray(v)) return v.map(jsonSafe);
  if (v instanceof Error) return errorToJSON(v);
  return v;
}

export type CommsErrorCode =
  | 'PEER_CLOSED' // the peer closed the channel at a message boundary
  | 'TRUNCATED' // the peer closed the channel inside a message
  | 'TAG_MISMATCH' // a message of another tag arrived
  | 'BAD_SIZE' // a fixed-size value of the wrong length
  | 'MESSAGE_TOO_LARGE' // the announced length exceeds maxMessageSize
  | 'UNEXPECTED_FD' // an fd where none belongs, or too many fds on one message
  | 'MISSING_FD' // an Fd message without its fd
  | 'BAD_MSGPACK' // a Msgpack payload that does not decode
  | 'BAD_UTF8' // a String payload that is not UTF-8
  | 'CLOSED' // this side closed the channel
  | 'IO'; // the socket call failed (errno in `errno`)

/** A Comms failure. After any code but TAG_MISMATCH, BAD_SIZE, BAD_MSGPACK or BAD_UTF8 the channel is broken. */
export class CommsError extends SbxError {
  declare readonly code: CommsErrorCode;
  readonly errno?: number;
  constructor(code: CommsErrorCode, message: string, options?: { cause?: unknown; errno?: number }) {
    super(code, message, options);
    if (options?.errno !== undefined) this.errno = options.errno;
  }
}

export type ClientErrorCode =
  | 'NOT_IN_SANDBOX' // no handshake socket: not started by an executor with enableSandboxBeforeExec: false
  | 'ALREADY_SANDBOXED' // sandboxMeHere() was called before in this process
  | 'EXECUTOR_GONE' // the executor closed the handshake channel (it died or gave up)
  | 'THREADS_WITHOUT_TSYNC' // several threads, and the kernel cannot filter them all with a listener
  | 'TSYNC_FAILED' // a thread could not be synchronised (it has a seccomp filter of its own)
  | 'UNSUPPORTED_KERNEL' // no seccomp user notification (Linux < 5.0)
  | 'POLICY_REJECTED' // the executor refused (its reason is in the message) or the kernel rejected the program
  | 'PROTOCOL' // the executor sent something the handshake does not allow
  | 'IO' // a system call failed (errno in `errno`)
  | 'NOT_MAPPED'; // getMappedFd(name): the executor mapped no fd under that name

/** A sandboxMeHere() failure. `filterInstalled` tells whether the filter went on anyway. */
export class ClientError extends SbxError {
  declare readonly code: ClientErrorCode;
  readonly errno?: number;
  /** True when the filter is on although the call failed: forbidden calls then fail with ENOSYS
   *  instead of being reported, and the process should exit. */
  readonly filterInstalled: boolean;
  constructor(
    code: ClientErrorCode,
    message: string,
    options?: { cause?: unknown; errno?: number; filterInstalled?: boolean },
  ) {
    super(code, message, options);
    if (options?.errno !== undefined) this.errno = options.errno;
    this.filterInstalled = options?.filterInstalled ?? false;
  }
}

export type BufferErrorCode =
  | 'NOT_A_MEMFD' // the fd is a regular file, a pipe, a socket... not a memfd
  | 'WRONG_SIZE' // the memfd's size differs from the announced or expected size
  | 'SEAL_FAILED' // the memfd cannot be sealed against resizing (F_SEAL_SEAL is set)
  | 'NOT_WRITABLE' // the memfd cannot be mapped writable (write-sealed or read-only)
  | 'TOO_LARGE' // the announced size is above maxSize (or above 2^53 - 1)
  | 'CLOSED' // the buffer was closed
  | 'IO'; // a system call failed (errno in `errno`)

/** A SharedBuffer failure. The fd in question is closed when it came from recvBuffer(). */
export class BufferError extends SbxError {
  declare readonly code: BufferErrorCode;
  readonly errno?: number;
  constructor(code: BufferErrorCode, message: string, options?: { cause?: unknown; errno?: number }) {
    super(code, message, options);
    if (options?.errno !== undefined) this.errno = options.errno;
  }
}

export type ForkErrorCode =
  | 'NODE_FLAGS' // the forkserver's node lacks the flags forking needs (the message names them)
  | 'NODE_BUILD' // the fork binding was built for another V8 than this node runs
  | 'NODE_UNSUPPORTED' // no fork binding for this Node's ABI (the message names the Node and what to do)
  | 'IO_URING' // the forkserver has (or could open) an io_uring ring, which its children would share
  | 'NOT_IN_SANDBOX' // no Comms channel: not started by Executor.startForkServer()
  | 'EXECUTOR_GONE' // the executor closed the channel (the forkserver should exit)
  | 'NOT_FORKSERVER' // waitAndFork() in a forked child
  | 'BUSY' // requests in flight in the forkserver (await ForkingClient.ready() before forking)
  | 'UNSUPPORTED_IN_CHILD' // a feature that cannot work in a forked child (Worker threads...)
  | 'PROTOCOL' // the executor sent something the fork protocol does not allow
  | 'IO'; // a system call failed (errno in `errno`)

/** A custom-fork mode failure (ForkingClient, and features refused in a forked child). */
export class ForkError extends SbxError {
  declare readonly code: ForkErrorCode;
  readonly errno?: number;
  constructor(code: ForkErrorCode, message: string, options?: { cause?: unknown; errno?: number }) {
    super(code, message, options);
    if (options?.errno !== undefined) this.errno = options.errno;
  }
}

/** sbx's native parts (the addon, the forkserver executable) cannot be found or loaded. */
export class NativeLoadError extends SbxError {
  declare readonly code: 'NATIVE_MISSING';
  constructor(message: string, options?: { cause?: unknown }) {
    super('NATIVE_MISSING', message, options);
  }
}
