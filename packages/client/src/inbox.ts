// inbox.ts: the received messages a Comms holds until its owner takes them, with the three bounds
// that keep a peer from growing it without end (bytes, messages, fds). When the inbox is full
// the Comms stops reading the socket: the kernel's socket buffer fills and the peer's writes block.
import type { Message } from './decoder.js';

/** Per-channel bounds on what a Comms holds received but not yet taken. */
export interface QueueLimits {
  /** Payload bytes. Default 16 MiB (one message above it is still taken whole). */
  maxQueuedBytes: number;
  /** Messages. Default 4096. */
  maxQueuedMessages: number;
  /** Received fds (Fd messages). Default 64. */
  maxQueuedFds: number;
}

export const DEFAULT_QUEUE_LIMITS: Readonly<QueueLimits> = Object.freeze({
  maxQueuedBytes: 16 * 1024 * 1024,
  maxQueuedMessages: 4096,
  maxQueuedFds: 64,
});

/** What a batch of messages adds to a queue. */
export class QueueCount {
  bytes = 0;
  messages = 0;
  fds = 0;

  add(m: Message, sign = 1): void {
    this.bytes += sign * m.data.length;
    this.messages += sign;
    if (m.fd >= 0) this.fds += sign;
  }

  /** True once any bound is reached (together with `extra`, e.g. messages read but not yet queued). */
  reaches(limits: QueueLimits, extra?: QueueCount): boolean {
    const e = extra ?? ZERO;
    return (
      this.bytes + e.bytes >= limits.maxQueuedBytes ||
      this.messages + e.messages >= limits.maxQueuedMessages ||
      this.fds + e.fds >= limits.maxQueuedFds
    );
  }
}

const ZERO = new QueueCount();

export class Inbox {
  private readonly items: Message[] = [];
  readonly count = new QueueCount();

  get length(): number {
    return this.items.length;
  }

  push(m: Message): void {
    this.items.push(m);
    this.count.add(m);
  }

  shift(): Message | undefined {
    const m = this.items.shift();
    if (m) this.count.add(m, -1);
    return m;
  }

  /** Takes every message (the caller owns their fds). */
  takeAll(): Message[] {
    const all = this.items.splice(0);
    for (const m of all) this.count.add(m, -1);
    return all;
  }
}

/** Validates user-given limits over the defaults. */
export function queueLimits(options: Partial<QueueLimits>): QueueLimits {
  const limits = { ...DEFAULT_QUEUE_LIMITS };
  for (const key of Object.keys(DEFAULT_QUEUE_LIMITS) as (keyof QueueLimits)[]) {
    const v = options[key];
    if (v === undefined) continue;
    if (!Number.isSafeInteger(v) || v < 1)
      throw new TypeError(`Comms: ${key} must be a positive integer, got ${String(v)}`);
    limits[key] = v;
  }
  return limits;
}
