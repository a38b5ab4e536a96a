// log-channel.ts: the executor's end of a sandboxee's log channel (Executor option `logs`,
// Sandbox2's LogServer): one Comms channel mapped as the named fd "sbx.log"; each LOG_TAG message
// is a level byte and a UTF-8 message (@sbx/client logs.ts writes them). Anything else is a
// protocol error: the channel is closed and one record with `sbx: true` says why.
import {
  Comms,
  LOG_FD_NAME,
  LOG_LEVELS,
  LOG_TAG,
  MAX_LOG_MESSAGE_BYTES,
  type LogLevel,
  type Message,
} from '@sbx/client';
import { closeQuietly } from '@sbx/client/internal';
import type { Ipc } from './ipc.js';

export interface LogRecord {
  readonly level: LogLevel;
  readonly message: string;
  /** Set on the record sbx itself adds when it closes a channel that broke the protocol. */
  readonly sbx?: true;
}

export type LogHandler = (record: LogRecord) => void;

/** Headroom over the longest message: the level byte, and a client that cut at a character edge. */
const MAX_RECORD = MAX_LOG_MESSAGE_BYTES + 16;

export class LogChannel {
  readonly #comms: Comms;
  readonly #closed: Promise<void>;

  constructor(ipc: Ipc, handler: LogHandler) {
    const ours = ipc.receiveFd(LOG_FD_NAME);
    // Queue bounds keep a chatty sandboxee from filling the executor's memory: while the handler
    // lags, the socket is not read and the sandboxee's writes block.
    this.#comms = new Comms(ours, { maxMessageSize: MAX_RECORD, maxQueuedMessages: 1024 }).unref();
    let done!: () => void;
    this.#closed = new Promise((resolve) => {
      done = resolve;
    });
    const fail = (why: string): void => {
      this.#comms.close();
      deliver(handler, { level: 'error', message: `sbx: log channel closed: ${why}`, sbx: true });
      done();
    };
    this.#comms.onMessage(
      (m: Message) => {
        if (m.tag !== LOG_TAG) {
          if (m.fd >= 0) closeQuietly(m.fd);
          return fail(`a message with tag 0x${m.tag.toString(16)} is not a log record`);
        }
        const level = LOG_LEVELS[m.data[0] ?? 255];
        if (m.data.length === 0 || level === undefined)
          return fail(m.data.length === 0 ? 'an empty log record' : `log level ${m.data[0]} is not 0..3`);
        deliver(handler, { level, message: m.data.subarray(1).toString('utf8') });
      },
      (err: Error) => {
        const code = (err as { code?: string }).code;
        if (code === 'PEER_CLOSED' || code === 'CLOSED') {
          this.#comms.close();
          done();
        } else fail(err.message);
      },
    );
  }

  /** Resolves once the sandboxee side closed (every record delivered). Keeps the process alive until then. */
  get drained(): Promise<void> {
    this.#comms.ref();
    return this.#closed;
  }
}

/** A throwing handler must not break the channel or the run loop. */
function deliver(handler: LogHandler, r: LogRecord): void {
  try {
    handler(r);
  } catch (e) {
    queueMicrotask(() => {
      throw e;
    });
  }
}
