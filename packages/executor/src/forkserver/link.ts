// link.ts: what the executor's two links to a forkserver share: the global forkserver
// (global.ts, native/forkserver) and a user's custom forkserver (custom.ts, ForkingClient). Both
// send a request with its fds as one unit, hold the event loop only while a request is in flight,
// and learn of a child's end from the same EXITED record.
import type { Comms } from '@sbx/client';
import { ExitedFlag } from './protocol.js';

export interface Exited {
  pid: number;
  /** Raw wait status. */
  status: number;
  utimeUs: number;
  stimeUs: number;
  maxRssKiB: number;
  /** The forkserver killed it at its walltime. */
  timedOut: boolean;
}

/** EXITED: u64 id, u32 pid, i32 status, u64 utime_us, u64 stime_us, u64 maxrss_kib; the global
 *  forkserver appends a u32 of ExitedFlag bits (protocol.h), a custom one does not. */
export const EXITED_SIZE = 40;

/** Decodes an EXITED payload of at least EXITED_SIZE bytes. */
export function decodeExited(d: Buffer): { id: bigint; exited: Exited } {
  return {
    id: d.readBigUInt64LE(0),
    exited: {
      pid: d.readUInt32LE(8),
      status: d.readInt32LE(12),
      utimeUs: Number(d.readBigUInt64LE(16)),
      stimeUs: Number(d.readBigUInt64LE(24)),
      maxRssKiB: Number(d.readBigUInt64LE(32)),
      timedOut: d.length >= EXITED_SIZE + 4 && (d.readUInt32LE(EXITED_SIZE) & ExitedFlag.Walltime) !== 0,
    },
  };
}

/**
 * Queues a request and its fds in one go: with an await in between, a concurrent request could
 * land between this one's Fd messages (the forkserver reads them as one unit and would fail both).
 * Settles only when every send settled: the fds are the caller's again only then.
 */
export async function sendRequest(comms: Comms, tag: number, payload: Buffer, fds: readonly number[]): Promise<void> {
  const sends = [comms.sendTLV(tag, payload), ...fds.map((fd) => comms.sendFd(fd))];
  const failed = (await Promise.allSettled(sends)).find((r) => r.status === 'rejected');
  if (failed) throw failed.reason;
}

/** Keeps the event loop alive while requests are in flight; an idle forkserver link does not. */
export class InFlight {
  private count = 0;
  constructor(private readonly comms: Comms) {}

  hold(): void {
    if (this.count++ === 0) this.comms.ref();
  }

  release(): void {
    if (--this.count === 0) this.comms.unref();
  }

  /** The link died: nothing is in flight any more. */
  reset(): void {
    this.count = 0;
  }
}
