// wire.ts: what a call looks like on the child's Comms channel (fd 1023), for both sides.
// A request is one msgpack message { fn, args, buffers, kinds } followed by `buffers`
// attachments (kinds[i]: 'b' a shared buffer, 'f' an fd); a reply is { ok: true, value, buffers }
// followed by its shared buffers, or { ok: false, error }. Byte arrays at or above a threshold
// leave the msgpack value: each is replaced by a marker { [BUFFER_MARK]: index, kind } and
// travels as a sealed memfd (Comms sendBuffer), mapped by the peer instead of copied through the
// socket; a PassFd argument travels as the fd itself (SCM_RIGHTS). docs/modules.md has the layout.
import { SharedBuffer } from '@sbx/client';

/** The key of a buffer marker. A NUL first keeps it apart from any identifier a module uses. */
export const BUFFER_MARK = '\u0000sbx:buffer';

/** Byte arrays of this size or more travel as shared buffers (64 KiB). */
export const DEFAULT_BUFFER_THRESHOLD = 64 * 1024;

/** How deep extractBuffers looks for byte arrays inside arrays and plain objects. */
const MAX_DEPTH = 32;

/** The request the executor sends; `describe` asks for the module's exports instead of a call. */
export interface CallRequest {
  fn: string;
  args: unknown[];
  buffers: number;
  /** One letter per attachment: 'b' shared buffer, 'f' fd. */
  kinds: string;
  describe?: boolean;
}

/** An argument that passes an fd: the child receives its own copy, open for the call's duration. */
export class PassFd {
  readonly fd: number;
  constructor(fd: number) {
    if (!Number.isInteger(fd) || fd < 0)
      throw new TypeError(`PassFd: fd must be a non-negative integer, got ${String(fd)}`);
    this.fd = fd;
  }
}

/** What travels next to a message, in the order of the markers' indexes. */
export type Attachment = Uint8Array | SharedBuffer | PassFd;

/** An error thrown in the child, as it travels. */
export interface RemoteErrorInfo {
  name: string;
  message: string;
  stack?: string;
  code?: string;
}

export type CallReply = { ok: true; value: unknown; buffers: number } | { ok: false; error: RemoteErrorInfo };

/** Buffer → 'buffer', any other Uint8Array → 'u8' (the receiver gives back the same kind); 'fd'. */
type Kind = 'buffer' | 'u8' | 'fd';

/** The kinds letters of a list of attachments. */
export function kindsOf(out: readonly Attachment[]): string {
  return out.map((a) => (a instanceof PassFd ? 'f' : 'b')).join('');
}

/**
 * Replaces every Uint8Array of `threshold` bytes or more found in `value` (itself, or inside
 * arrays and plain objects up to 32 levels down) by a marker, and appends it to `out`.
 * A SharedBuffer is always sent as itself (no copy). Everything else is left for msgpack.
 * Returns the value to encode.
 */
export function extractBuffers(value: unknown, threshold: number, out: Attachment[], depth = 0): unknown {
  if (value instanceof PassFd) {
    out.push(value);
    return { [BUFFER_MARK]: out.length - 1, kind: 'fd' };
  }
  if (value instanceof SharedBuffer) {
    out.push(value); // sent as it is: no copy
    return { [BUFFER_MARK]: out.length - 1, kind: 'buffer' };
  }
  if (value instanceof Uint8Array) {
    if (value.byteLength < threshold) return value;
    out.push(value);
    return { [BUFFER_MARK]: out.length - 1, kind: Buffer.isBuffer(value) ? 'buffer' : 'u8' };
  }
  if (depth >= MAX_DEPTH || value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) {
    let copy: unknown[] | null = null;
    for (let i = 0; i < value.length; i++) {
      const v = extractBuffers(value[i], threshold, out, depth + 1);
      if (v !== value[i]) (copy ??= value.slice())[i] = v;
    }
    return copy ?? value;
  }
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return value;
  let copy: Record<string, unknown> | null = null;
  for (const [k, v] of Object.entries(value)) {
    const e = extractBuffers(v, threshold, out, depth + 1);
    if (e !== v) (copy ??= { ...(value as Record<string, unknown>) })[k] = e;
  }
  return copy ?? value;
}

/** A marker's index and kind, or null when `value` is no marker. */
function markerOf(value: unknown): { index: unknown; kind: unknown } | null {
  if (value === null || typeof value !== 'object' || Array.isArray(value) || !Object.hasOwn(value, BUFFER_MARK))
    return null;
  const v = value as Record<string, unknown>;
  return { index: v[BUFFER_MARK], kind: v.kind };
}

/**
 * Puts the received byte arrays back in place of their markers (the inverse of extractBuffers).
 * Throws a TypeError naming the fault when a marker names no received buffer or a buffer is
 * named twice: the peer may be hostile.
 */
export function restoreBuffers(
  value: unknown,
  buffers: readonly (Uint8Array | number)[],
  depth = 0,
  used = new Set<number>(),
): unknown {
  const m = markerOf(value);
  if (m) {
    const i = m.index;
    if (typeof i !== 'number' || !Number.isInteger(i) || i < 0 || i >= buffers.length)
      throw new TypeError(`buffer marker names buffer ${String(i)}, but ${buffers.length} came with the message`);
    if (used.has(i)) throw new TypeError(`buffer marker names buffer ${i} twice`);
    used.add(i);
    const b = buffers[i]!;
    const kind = m.kind as Kind;
    if ((kind === 'fd') !== (typeof b === 'number'))
      throw new TypeError(
        `buffer marker ${i} says ${String(kind)}, but ${typeof b === 'number' ? 'an fd' : 'a buffer'} came`,
      );
    if (typeof b === 'number') return b;
    return kind === 'u8' ? new Uint8Array(b.buffer, b.byteOffset, b.byteLength) : b;
  }
  if (depth >= MAX_DEPTH || value === null || typeof value !== 'object' || value instanceof Uint8Array) return value;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) value[i] = restoreBuffers(value[i], buffers, depth + 1, used);
    return value;
  }
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return value;
  for (const [k, v] of Object.entries(value))
    (value as Record<string, unknown>)[k] = restoreBuffers(v, buffers, depth + 1, used);
  return value;
}

/** A thrown value as it travels: name, message, stack and a string code when it has them. */
export function errorInfo(err: unknown): RemoteErrorInfo {
  // Error-like, not instanceof Error: an error of another realm (vm contexts) counts too.
  if (err !== null && typeof err === 'object' && typeof (err as Error).message === 'string') {
    const e = err as Error;
    const code = (e as { code?: unknown }).code;
    return {
      name: typeof e.name === 'string' ? e.name : 'Error',
      message: e.message,
      ...(typeof e.stack === 'string' ? { stack: e.stack } : {}),
      ...(typeof code === 'string' ? { code } : {}),
    };
  }
  return { name: 'Error', message: `a non-Error value was thrown: ${safeString(err)}` };
}

function safeString(v: unknown): string {
  try {
    return String(v).slice(0, 200);
  } catch {
    return typeof v;
  }
}
