// logs.ts: a sandboxee's log lines to the executor (Sandbox2's Client::SendLogsToSupervisor).
// When the executor asks for logs (Executor option `logs`), it maps one end of a Comms channel
// under the name "sbx.log"; each record is one TLV with tag LOG_TAG whose payload is a level byte
// and the UTF-8 message (docs/wire-protocol.md, "Logs").
import { format } from 'node:util';
import { ClientError } from './errors.js';
import { getMappedFd, hasMappedFd } from './named-fds.js';
import { SyncComms } from './sync-comms.js';

/** The name the log channel is mapped under. */
export const LOG_FD_NAME = 'sbx.log';
/** The tag of a log record on that channel. */
export const LOG_TAG = 0x5310;
/** Levels in wire order (the payload's first byte). */
export const LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
/** Longest message sent; longer ones are cut (and end with "…"). */
export const MAX_LOG_MESSAGE_BYTES = 16 * 1024;

/** One record on the wire: the level byte, then the message. */
export function encodeLogRecord(level: LogLevel, message: string): Buffer {
  const code = LOG_LEVELS.indexOf(level);
  if (code < 0) throw new TypeError(`log level must be one of ${LOG_LEVELS.join(', ')}, got ${String(level)}`);
  let text = Buffer.from(message, 'utf8');
  if (text.length > MAX_LOG_MESSAGE_BYTES)
    text = Buffer.concat([Buffer.from(text.subarray(0, MAX_LOG_MESSAGE_BYTES - 3).toString('utf8')), Buffer.from('…')]);
  return Buffer.concat([Buffer.of(code), text]);
}

const CONSOLE_LEVELS: ReadonlyArray<readonly [keyof Console, LogLevel]> = [
  ['debug', 'debug'],
  ['log', 'info'],
  ['info', 'info'],
  ['warn', 'warn'],
  ['error', 'error'],
];

let channel: SyncComms | null = null;

/** Sends one record to the executor (ClientError NOT_MAPPED when it did not ask for logs). */
export function logToSupervisor(level: LogLevel, message: string): void {
  const record = encodeLogRecord(level, String(message));
  channel ??= new SyncComms(getMappedFd(LOG_FD_NAME));
  channel.sendTLV(LOG_TAG, record);
}

/**
 * Redirects console.debug / log / info / warn / error to the executor's `logs` handler (log and
 * info as 'info'), formatted as console would (util.format). Returns a function that restores
 * the console. A record that cannot be sent (the executor went away) goes to the original console
 * method instead. ClientError NOT_MAPPED when the executor did not ask for logs.
 */
export function sendLogsToSupervisor(): () => void {
  if (!hasMappedFd(LOG_FD_NAME))
    throw new ClientError(
      'NOT_MAPPED',
      `sendLogsToSupervisor: the executor did not ask for logs (Executor option "logs"): no fd is mapped as "${LOG_FD_NAME}"`,
    );
  const saved = CONSOLE_LEVELS.map(([m]) => [m, console[m]] as const);
  for (const [method, level] of CONSOLE_LEVELS) {
    const original = console[method] as (...a: unknown[]) => void;
    (console as unknown as Record<string, unknown>)[method] = (...args: unknown[]) => {
      try {
        logToSupervisor(level, format(...args));
      } catch {
        original.apply(console, args);
      }
    };
  }
  return () => {
    for (const [m, f] of saved) (console as unknown as Record<string, unknown>)[m] = f;
  };
}
