// status.ts: the Status message of Comms (Sandbox2's SendStatus / RecvStatus, which carry an
// absl::Status): a u32 code in absl::StatusCode numbering, then the message in UTF-8.
import { CommsError } from './errors.js';

export const STATUS_CODES = [
  'OK',
  'CANCELLED',
  'UNKNOWN',
  'INVALID_ARGUMENT',
  'DEADLINE_EXCEEDED',
  'NOT_FOUND',
  'ALREADY_EXISTS',
  'PERMISSION_DENIED',
  'RESOURCE_EXHAUSTED',
  'FAILED_PRECONDITION',
  'ABORTED',
  'OUT_OF_RANGE',
  'UNIMPLEMENTED',
  'INTERNAL',
  'UNAVAILABLE',
  'DATA_LOSS',
  'UNAUTHENTICATED',
] as const;
export type StatusCodeName = (typeof STATUS_CODES)[number];

/** A status as Comms carries it. `ok` is code 0. */
export interface Status {
  readonly code: StatusCodeName;
  readonly message: string;
}

export function encodeStatus(status: Status): Buffer {
  if (status === null || typeof status !== 'object')
    throw new TypeError(`sendStatus(status): status must be { code, message }, got ${String(status)}`);
  const code = STATUS_CODES.indexOf(status.code);
  if (code < 0)
    throw new TypeError(`sendStatus: code must be one of ${STATUS_CODES.join(', ')}, got ${String(status.code)}`);
  const message = status.message ?? '';
  if (typeof message !== 'string') throw new TypeError('sendStatus: message must be a string');
  const text = Buffer.from(message, 'utf8');
  const out = Buffer.allocUnsafe(4 + text.length);
  out.writeUInt32LE(code, 0);
  text.copy(out, 4);
  return out;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

export function decodeStatus(data: Buffer): Status {
  if (data.length < 4)
    throw new CommsError('BAD_SIZE', `Comms: a Status message is at least 4 bytes (its code), got ${data.length}`);
  const n = data.readUInt32LE(0);
  const code = STATUS_CODES[n];
  if (code === undefined)
    throw new CommsError('BAD_SIZE', `Comms: Status code ${n} is not a known code (0..${STATUS_CODES.length - 1})`);
  let message: string;
  try {
    message = utf8.decode(data.subarray(4));
  } catch {
    throw new CommsError('BAD_UTF8', 'Comms: a Status message text is not UTF-8');
  }
  return { code, message };
}
