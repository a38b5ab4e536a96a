// codec.ts: payloads of the built-in types, shared by the asynchronous and synchronous Comms.
import { createRequire } from 'node:module';
import type { Packr } from 'msgpackr';
import { CommsError } from './errors.js';
import { msgpackProblem } from './msgpack-check.js';
import { HEADER_SIZE, Tag, tagName, USER_TAG_MAX } from './tags.js';

/** Plain msgpack (no records extension) so any msgpack library on the other side can read it:
 *  `undefined` goes out as nil (msgpack has no undefined; msgpackr's own extension 0 is refused).
 *  Loaded on first use: it is a fifth of a CLI start, and most channels never carry Msgpack. */
let packr: Packr | undefined;
function msgpack(nativeStrings = true): Packr {
  if (!packr) {
    const { Packr: PackrClass } = requireMsgpackr(nativeStrings);
    packr = new PackrClass({ useRecords: false, moreTypes: false, mapsAsObjects: true, encodeUndefinedAsNil: true });
  }
  return packr;
}

/** msgpackr's switch for its native string extractor (msgpackr-extract), read once, at its load. */
const NATIVE_SWITCH = 'MSGPACKR_NATIVE_ACCELERATION_DISABLED';

/**
 * msgpackr, with or without msgpackr-extract. Finding msgpackr-extract's prebuilt file costs more
 * than the rest of msgpackr's load (its lookup lists directories and probes the libc), and it only
 * speeds up decoding long strings: a sandboxee that prepares for sandboxMeHere() leaves it out.
 */
function requireMsgpackr(nativeStrings: boolean): typeof import('msgpackr') {
  const load = () => createRequire(import.meta.url)('msgpackr') as typeof import('msgpackr');
  if (nativeStrings) return load();
  const before = process.env[NATIVE_SWITCH];
  process.env[NATIVE_SWITCH] = 'true';
  try {
    return load();
  } finally {
    if (before === undefined) delete process.env[NATIVE_SWITCH];
    else process.env[NATIVE_SWITCH] = before;
  }
}

/**
 * Loads msgpackr now (sandbox-me-here: a load after the filter is on would be a violation).
 * `nativeStrings: false` loads it without msgpackr-extract (see requireMsgpackr). No effect once loaded.
 */
export function loadCodec(options: { nativeStrings?: boolean } = {}): void {
  msgpack(options.nativeStrings ?? true);
}

/**
 * Runs the Msgpack encode and decode paths once, so that V8 has compiled them: a forkserver does
 * it before it forks, and no child compiles them again for its first message.
 */
export function warmCodec(): void {
  const sample = { kind: 'warm', n: 1, x: 1.5, ok: true, none: null, list: [1, 'two'], bytes: Buffer.alloc(1) };
  decodeMessage(encodeMessage(sample));
}

export function encodeHeader(
  tag: number,
  length: number,
  into: Buffer = Buffer.allocUnsafe(HEADER_SIZE),
  at = 0,
): Buffer {
  into.writeUInt32LE(tag, at);
  into.writeBigUInt64LE(BigInt(length), at + 4);
  return into;
}

/** Validates a tag given by a caller: user tags and built-in tags are fine, 0 is not. */
export function checkTag(tag: number): void {
  if (!Number.isInteger(tag) || tag <= 0 || tag > 0xffffffff) {
    throw new TypeError(
      `Comms tag must be an integer in 1..0xffffffff (user tags up to 0x${USER_TAG_MAX.toString(16)}), got ${tag}`,
    );
  }
}

type IntKind = 'Int8' | 'Uint8' | 'Int16' | 'Uint16' | 'Int32' | 'Uint32';
type BigKind = 'Int64' | 'Uint64';

const intRange: Record<IntKind, [number, number, number]> = {
  Int8: [-0x80, 0x7f, 1],
  Uint8: [0, 0xff, 1],
  Int16: [-0x8000, 0x7fff, 2],
  Uint16: [0, 0xffff, 2],
  Int32: [-0x80000000, 0x7fffffff, 4],
  Uint32: [0, 0xffffffff, 4],
};

export function encodeInt(kind: IntKind, v: number): Buffer {
  const [min, max, size] = intRange[kind];
  if (!Number.isInteger(v) || v < min || v > max)
    throw new RangeError(`send${kind}: ${v} is not an integer in ${min}..${max}`);
  const b = Buffer.allocUnsafe(size);
  if (kind.startsWith('U')) b.writeUIntLE(v, 0, size);
  else b.writeIntLE(v, 0, size);
  return b;
}

export function decodeInt(kind: IntKind, payload: Buffer): number {
  const size = intRange[kind][2];
  checkSize(kind, payload, size);
  return kind.startsWith('U') ? payload.readUIntLE(0, size) : payload.readIntLE(0, size);
}

export function encodeBig(kind: BigKind, v: bigint | number): Buffer {
  const big = typeof v === 'number' ? toBigInt(kind, v) : v;
  const b = Buffer.allocUnsafe(8);
  if (kind === 'Uint64') {
    if (big < 0n || big > 0xffffffffffffffffn) throw new RangeError(`sendUint64: ${big} is out of range`);
    b.writeBigUInt64LE(big);
  } else {
    if (big < -(1n << 63n) || big >= 1n << 63n) throw new RangeError(`sendInt64: ${big} is out of range`);
    b.writeBigInt64LE(big);
  }
  return b;
}

function toBigInt(kind: BigKind, v: number): bigint {
  if (!Number.isSafeInteger(v)) throw new RangeError(`send${kind}: ${v} is not a safe integer (pass a bigint)`);
  return BigInt(v);
}

export function decodeBig(kind: BigKind, payload: Buffer): bigint {
  checkSize(kind, payload, 8);
  return kind === 'Uint64' ? payload.readBigUInt64LE() : payload.readBigInt64LE();
}

export function encodeBool(v: boolean): Buffer {
  if (typeof v !== 'boolean') throw new TypeError(`sendBool: expected a boolean, got ${typeof v}`);
  return Buffer.from([v ? 1 : 0]);
}

export function decodeBool(payload: Buffer): boolean {
  checkSize('Bool', payload, 1);
  return payload[0] !== 0;
}

export function encodeString(s: string): Buffer {
  if (typeof s !== 'string') throw new TypeError(`sendString: expected a string, got ${typeof s}`);
  return Buffer.from(s, 'utf8');
}

const utf8 = new TextDecoder('utf-8', { fatal: true });
export function decodeString(payload: Buffer): string {
  try {
    return utf8.decode(payload);
  } catch (cause) {
    throw new CommsError('BAD_UTF8', `recvString: the String payload (${payload.length} bytes) is not valid UTF-8`, {
      cause,
    });
  }
}

export function toBuffer(data: Uint8Array, what: string): Buffer {
  if (!(data instanceof Uint8Array)) throw new TypeError(`${what}: expected a Uint8Array or Buffer`);
  return Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

export function encodeMessage(value: unknown): Buffer {
  return msgpack().pack(value);
}

export function decodeMessage(payload: Buffer): unknown {
  const problem = msgpackProblem(payload);
  if (problem)
    throw new CommsError(
      'BAD_MSGPACK',
      `recvMessage: the Msgpack payload (${payload.length} bytes) is not plain msgpack: ${problem}`,
    );
  try {
    return msgpack().unpack(payload);
  } catch (cause) {
    throw new CommsError(
      'BAD_MSGPACK',
      `recvMessage: the Msgpack payload (${payload.length} bytes) does not decode: ${(cause as Error).message}`,
      { cause },
    );
  }
}

function checkSize(kind: string, payload: Buffer, size: number): void {
  if (payload.length !== size) {
    throw new CommsError('BAD_SIZE', `recv${kind}: expected a ${size}-byte payload, got ${payload.length} bytes`);
  }
}

export function tagMismatch(expected: number, got: number): CommsError {
  return new CommsError('TAG_MISMATCH', `Comms: expected a ${tagName(expected)} message, got ${tagName(got)}`);
}

export { Tag };
