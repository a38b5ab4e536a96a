// buffer.ts: shared memory between an executor and a sandboxee (docs/architecture.md, "Shared-memory buffers"): a sealed memfd,
// mapped MAP_SHARED, seen from JS as an ArrayBuffer over the mapping (no copy). The C side is
// libsbx_client's sbx/buffer.h; this class is a thin owner of what the addon returns.
import { createRequire } from 'node:module';
import * as pool from './buffer-pool.js';
import { BufferError, type BufferErrorCode } from './errors.js';
import { native, type NativeErrnoError } from './native.js';

/**
 * Node 24's markAsUntransferable() also makes an ArrayBuffer undetachable, and close()'s detach
 * (napi_detach_arraybuffer) then aborts the whole process. Where that is so, buffers are left
 * unmarked: transferring one's ArrayBuffer to a Worker is then the caller's mistake to avoid.
 * Probed once, when the first buffer is made.
 */
let mark: ((memory: ArrayBuffer) => void) | null | undefined;
/** node:worker_threads on first use: a process that never makes a buffer (the CLI) never loads it. */
function markAsUntransferable(memory: ArrayBuffer): void {
  if (mark === undefined) {
    const wt = createRequire(import.meta.url)('node:worker_threads') as {
      markAsUntransferable: (o: object) => void;
    };
    const probe = new ArrayBuffer(1);
    wt.markAsUntransferable(probe);
    try {
      (probe as { transfer?: () => ArrayBuffer }).transfer?.(); // Node 20 has no transfer(): marks are fine there
      mark = wt.markAsUntransferable;
    } catch {
      mark = null;
    }
  }
  mark?.(memory);
}

export interface FromFdOptions {
  /** The size the buffer must have (WRONG_SIZE otherwise). Default: any. */
  expectedSize?: number;
}

export interface RecvBufferOptions extends FromFdOptions {
  /** Refuse (TOO_LARGE) a buffer whose announced size is above this. Default: no limit (a
   *  mapping costs address space, not memory, until its pages are touched). */
  maxSize?: number;
}

/**
 * A shared-memory buffer: a memfd of fixed size (sealed with F_SEAL_SHRINK | F_SEAL_GROW before
 * anything maps it, so no peer can make an access fault with SIGBUS), mapped read-write and
 * shared. Send it with `comms.sendBuffer(buf)`; the peer's `comms.recvBuffer()` maps the same
 * pages.
 *
 * The buffer owns its fd and its mapping. `close()` releases both at once and detaches the
 * ArrayBuffer (every view then has length 0: JS never sees unmapped memory). A buffer that is
 * never closed is released when its ArrayBuffer is garbage-collected (the mapping size counts
 * as external memory, which makes V8 collect sooner); close() is still the way to release it at
 * a known time. The ArrayBuffer cannot be transferred to a Worker (on Node 24 it is not marked,
 * see markAsUntransferable below: do not transfer it there).
 *
 * The contents are shared with the peer, which may change them at any time: validate what you
 * read, and copy what you validated before relying on it.
 *
 * Exported as `SharedBuffer` and, after the issue and Sandbox2's name, as `Buffer`; importing the
 * latter by that name shadows Node's global Buffer in that module.
 */
export class SharedBuffer {
  #fd: number;
  readonly #size: number;
  #memory: ArrayBuffer | null;
  #bytes: Uint8Array | null = null;

  private constructor(r: { fd: number; size: number; memory: ArrayBuffer }) {
    this.#fd = r.fd;
    this.#size = r.size;
    this.#memory = r.memory;
    markAsUntransferable(r.memory);
  }

  /**
   * A new zero-filled buffer of `size` bytes, never handed out before. Up to 1 MiB, a size made
   * recently is served from a spare made ahead (pages already allocated), and a new spare of it
   * is made after the current event-loop turn; otherwise it is made now (sparse: pages exist
   * once touched). See reserve().
   */
  static create(size: number): SharedBuffer {
    if (!Number.isSafeInteger(size) || size < 0)
      throw new TypeError(`SharedBuffer.create: size must be a non-negative safe integer, got ${size}`);
    const made = pool.takeSpare(size) ?? call(() => native().bufferCreate(size), 'create');
    pool.noteCreated(size);
    return new SharedBuffer(made);
  }

  /**
   * Makes `count` spares of `size` bytes now, for create() to take later: a process that will
   * install a filter forbidding memfd_create (sandboxMeHere()) reserves what it will need before
   * it, and keeps no automatic refill after it. Spares are fresh zero-filled memfds, each handed
   * out once; a forked child never takes its parent's.
   */
  static reserve(size: number, count = 1): void {
    if (!Number.isSafeInteger(size) || size < 0)
      throw new TypeError(`SharedBuffer.reserve: size must be a non-negative safe integer, got ${size}`);
    if (!Number.isSafeInteger(count) || count < 0)
      throw new TypeError(`SharedBuffer.reserve: count must be a non-negative safe integer, got ${count}`);
    call(() => pool.reserve(size, count), 'reserve');
  }

  /** How many spares of `size` bytes are ready for create(). */
  static spares(size: number): number {
    return pool.spareCount(size);
  }

  /** Closes every spare (their fds and mappings); create() makes buffers on demand until the next refill. */
  static releaseSpares(): void {
    pool.releaseSpares();
  }

  /**
   * Maps a memfd that came from elsewhere. Checks that it is a memfd (NOT_A_MEMFD: a regular
   * file, a pipe, a socket...), seals it against resizing (SEAL_FAILED when it cannot be), then
   * checks its size (WRONG_SIZE) and maps it (NOT_WRITABLE when write-sealed or read-only). On
   * success the buffer owns `fd`; on failure the caller still does.
   */
  static fromFd(fd: number, options: FromFdOptions = {}): SharedBuffer {
    if (!Number.isInteger(fd) || fd < 0)
      throw new TypeError(`SharedBuffer.fromFd: fd must be a non-negative integer, got ${fd}`);
    const expected = options.expectedSize ?? -1;
    if (expected !== -1 && (!Number.isSafeInteger(expected) || expected < 0)) {
      throw new TypeError(`SharedBuffer.fromFd: expectedSize must be a non-negative safe integer, got ${expected}`);
    }
    return new SharedBuffer(call(() => native().bufferFromFd(fd, expected), 'fromFd'));
  }

  /** The memfd (owned by the buffer: do not close it; it is sent borrowed). */
  get fd(): number {
    this.check('fd');
    return this.#fd;
  }

  /** Size in bytes (kept after close()). */
  get size(): number {
    return this.#size;
  }

  /** The mapping as an ArrayBuffer (no copy). */
  get arrayBuffer(): ArrayBuffer {
    this.check('arrayBuffer');
    return this.#memory!;
  }

  /** A Uint8Array over the whole mapping (no copy; the same view every time). */
  get bytes(): Uint8Array {
    this.check('bytes');
    return (this.#bytes ??= new Uint8Array(this.#memory!));
  }

  get closed(): boolean {
    return this.#memory === null;
  }

  /** Unmaps, closes the fd and detaches the ArrayBuffer. Idempotent. */
  close(): void {
    if (!this.#memory) return;
    const memory = this.#memory;
    this.#memory = null;
    this.#bytes = null;
    this.#fd = -1;
    native().bufferClose(memory);
  }

  private check(what: string): void {
    if (!this.#memory) throw new BufferError('CLOSED', `SharedBuffer.${what}: the buffer was closed`);
  }
}

/** Checks of recvBuffer() on the announced size; closes `fd` and throws on a refusal. */
export function acceptAnnounced(announced: bigint, fd: number, options: RecvBufferOptions): SharedBuffer {
  let refusal: BufferError | null = null;
  if (announced > BigInt(Number.MAX_SAFE_INTEGER)) {
    refusal = new BufferError('TOO_LARGE', `recvBuffer: the peer announced ${announced} bytes`);
  } else if (options.maxSize !== undefined && announced > BigInt(options.maxSize)) {
    refusal = new BufferError(
      'TOO_LARGE',
      `recvBuffer: the peer announced ${announced} bytes, above maxSize ${options.maxSize}`,
    );
  } else if (options.expectedSize !== undefined && announced !== BigInt(options.expectedSize)) {
    refusal = new BufferError(
      'WRONG_SIZE',
      `recvBuffer: the peer announced ${announced} bytes, expected ${options.expectedSize}`,
    );
  }
  if (!refusal) {
    try {
      return SharedBuffer.fromFd(fd, { expectedSize: Number(announced) });
    } catch (err) {
      refusal = err as BufferError;
    }
  }
  try {
    native().close(fd);
  } catch {
    // already closed
  }
  throw refusal;
}

const CODES: Record<string, BufferErrorCode> = {
  EMEDIUMTYPE: 'NOT_A_MEMFD',
  ERANGE: 'WRONG_SIZE',
  EPERM: 'SEAL_FAILED',
  EACCES: 'NOT_WRITABLE',
};

const HINTS: Partial<Record<BufferErrorCode, string>> = {
  NOT_A_MEMFD: 'the fd is not a memfd (a regular file, pipe, socket or other fd was given)',
  WRONG_SIZE: 'the memfd does not have the size that was announced or expected',
  SEAL_FAILED: 'the memfd cannot be sealed against resizing (made without MFD_ALLOW_SEALING, or F_SEAL_SEAL is set)',
  NOT_WRITABLE: 'the memfd cannot be mapped writable (write-sealed, or opened read-only)',
};

function call<T>(fn: () => T, what: string): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof TypeError) throw err;
    const e = err as NativeErrnoError;
    const code = CODES[e.code] ?? 'IO';
    const hint = HINTS[code];
    throw new BufferError(code, `SharedBuffer.${what}: ${hint ?? e.message}`, { cause: err, errno: e.errno });
  }
}
