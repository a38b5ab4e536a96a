// decoder.ts: the streaming TLV decoder of the asynchronous Comms. It trusts nothing: the peer may
// be a hostile sandboxee. Pure logic (no I/O), so it can be tested with any byte/fd schedule.
//
// fds: the kernel hands over the fds of an SCM_RIGHTS message with the recvmsg call that first
// reads bytes of the sendmsg they came with, and that call stops at the end of that sendmsg's
// bytes. A valid Fd message is a 12-byte header sent alone with one fd, so its fds arrive with a
// read that ends inside (start, start+12] of that header. Anything else is a protocol error.
import { CommsError } from './errors.js';
import { HEADER_SIZE, Tag, tagName } from './tags.js';

export interface Message {
  tag: number;
  data: Buffer;
  /** The received fd of an Fd message (the receiver owns it), else -1. */
  fd: number;
}

interface FdBatch {
  end: number; // stream position right after the read that brought them
  fds: number[];
}

export class Decoder {
  private readonly header = Buffer.alloc(HEADER_SIZE);
  private headerFill = 0;
  private payload: Buffer | null = null;
  private payloadFill = 0;
  private tag = 0;
  private pos = 0; // bytes consumed from the stream so far
  private pending: FdBatch | null = null;
  // A second batch, while `pending` belongs to the Fd header being read: a read that stopped
  // inside that header (buffer full) brought its fds, and the next read may run on to the end of
  // the next Fd message and bring that one's fds before the first header is complete.
  private next: FdBatch | null = null;
  private broken: CommsError | null = null;

  constructor(
    private readonly maxMessageSize: number,
    private readonly closeFd: (fd: number) => void,
  ) {}

  /** True between messages (an EOF now is an orderly close). */
  get atBoundary(): boolean {
    return this.headerFill === 0 && this.payload === null;
  }

  /** Where the next bytes may be read directly (a large payload in progress), else null. */
  directTarget(): { buf: Buffer; offset: number; length: number } | null {
    if (!this.payload || this.broken) return null;
    const left = this.payload.length - this.payloadFill;
    return left >= 65536 ? { buf: this.payload, offset: this.payloadFill, length: left } : null;
  }

  /** Account for `n` bytes that were read straight into directTarget(). */
  feedDirect(n: number, fds: number[], out: Message[]): void {
    this.noteFds(n, fds);
    this.pos += n;
    this.payloadFill += n;
    this.afterPayloadBytes(out);
  }

  /** Consumes one read: `chunk` bytes and the fds that came with it. Completed messages go to `out`.
   *  Throws a CommsError (and closes every fd it holds) on a protocol violation. */
  feed(chunk: Buffer, fds: number[], out: Message[]): void {
    if (this.broken) {
      fds.forEach(this.closeFd);
      throw this.broken;
    }
    this.noteFds(chunk.length, fds);
    let i = 0;
    while (i < chunk.length) {
      if (this.payload === null) {
        const take = Math.min(HEADER_SIZE - this.headerFill, chunk.length - i);
        chunk.copy(this.header, this.headerFill, i, i + take);
        this.headerFill += take;
        this.pos += take;
        i += take;
        if (this.headerFill === HEADER_SIZE) this.onHeader(out);
      } else {
        const take = Math.min(this.payload.length - this.payloadFill, chunk.length - i);
        chunk.copy(this.payload, this.payloadFill, i, i + take);
        this.payloadFill += take;
        this.pos += take;
        i += take;
        this.afterPayloadBytes(out);
      }
    }
  }

  /** The peer closed the stream. Throws TRUNCATED inside a message; else PEER_CLOSED. */
  end(): never {
    const err = this.atBoundary
      ? new CommsError('PEER_CLOSED', 'Comms: the peer closed the channel')
      : new CommsError(
          'TRUNCATED',
          `Comms: the peer closed the channel inside a ${tagName(this.tag || this.header.readUInt32LE(0))} message (${this.payload ? `${this.payloadFill} of ${this.payload.length} payload bytes` : `${this.headerFill} of ${HEADER_SIZE} header bytes`} received)`,
        );
    this.fail(err);
  }

  /** Closes any fd still held (on close of the channel). */
  dispose(): void {
    if (this.pending) this.pending.fds.forEach(this.closeFd);
    if (this.next) this.next.fds.forEach(this.closeFd);
    this.pending = null;
    this.next = null;
  }

  private noteFds(n: number, fds: number[]): void {
    if (fds.length === 0) return;
    if (this.pending) {
      // Legitimate only while the header the pending batch arrived in is still incomplete.
      const insideItsHeader =
        !this.next && this.payload === null && this.headerFill > 0 && this.pending.end > this.pos - this.headerFill;
      if (!insideItsHeader) {
        fds.forEach(this.closeFd);
        this.fail(new CommsError('UNEXPECTED_FD', 'Comms: fds arrived where no Fd message can claim them'));
      }
      this.next = { end: this.pos + n, fds };
      return;
    }
    this.pending = { end: this.pos + n, fds };
  }

  private onHeader(out: Message[]): void {
    const start = this.pos - HEADER_SIZE;
    const tag = this.header.readUInt32LE(0);
    const len = this.header.readBigUInt64LE(4);
    this.headerFill = 0;
    if (tag === 0) this.fail(new CommsError('IO', 'Comms: a message with tag 0 (invalid) arrived'));
    if (tag === Tag.Fd) {
      if (len !== 0n)
        this.fail(
          new CommsError('UNEXPECTED_FD', `Comms: an Fd message must be empty, this one announces ${len} bytes`),
        );
      const batch = this.pending;
      if (!batch || batch.end <= start || batch.end > this.pos) {
        this.fail(new CommsError('MISSING_FD', 'Comms: an Fd message arrived without its fd'));
      }
      this.pending = this.next;
      this.next = null;
      if (batch.fds.length !== 1) {
        batch.fds.forEach(this.closeFd);
        this.fail(
          new CommsError(
            'UNEXPECTED_FD',
            `Comms: an Fd message carried ${batch.fds.length} fds (exactly 1 is allowed)`,
          ),
        );
      }
      out.push({ tag, data: Buffer.alloc(0), fd: batch.fds[0]! });
      return;
    }
    this.checkStrayFds();
    if (len > BigInt(this.maxMessageSize)) {
      this.fail(
        new CommsError(
          'MESSAGE_TOO_LARGE',
          `Comms: a ${tagName(tag)} message announces ${len} bytes, above the limit of ${this.maxMessageSize} (maxMessageSize)`,
        ),
      );
    }
    this.tag = tag;
    this.payload = Buffer.allocUnsafe(Number(len));
    this.payloadFill = 0;
    this.afterPayloadBytes(out);
  }

  private afterPayloadBytes(out: Message[]): void {
    if (!this.payload || this.payloadFill < this.payload.length) return;
    this.checkStrayFds();
    out.push({ tag: this.tag, data: this.payload, fd: -1 });
    this.payload = null;
    this.tag = 0;
  }

  /** fds whose read ended at or before the current position and no Fd header claimed them. */
  private checkStrayFds(): void {
    if (this.pending && this.pending.end <= this.pos) {
      this.fail(
        new CommsError(
          'UNEXPECTED_FD',
          `Comms: ${this.pending.fds.length} fd(s) arrived with a ${tagName(this.tag || this.header.readUInt32LE(0))} message, which carries none`,
        ),
      );
    }
  }

  private fail(err: CommsError): never {
    this.dispose();
    this.broken = err;
    throw err;
  }
}
