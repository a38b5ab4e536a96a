// ipc.ts: the fds a sandboxee gets (Sandbox2's IPC): mapped fds, socketpairs whose far end it
// receives, and the Comms channel at fd 1023.
import { Comms, DEFAULT_CLIENT_FD, DEFAULT_COMMS_FD, type CommsOptions } from '@sbx/client';
import { closeQuietly, native } from '@sbx/client/internal';
import { ExecutorError } from './executor-error.js';
import { EXEC_FD_TARGET, SETUP_FD_TARGET } from '../forkserver/protocol.js';

export interface FdMapping {
  /** The executor's fd (borrowed until the sandbox starts: the forkserver gets a copy). */
  local: number;
  /** The fd number inside the sandboxee. */
  sandboxee: number;
  /** Close `local` in the executor once the sandbox started (fds made by receiveFd/comms). */
  owned: boolean;
}

/** Setup socket and exec fd between clone and exec; 1020 is the sandbox-me-here handshake socket. */
const RESERVED = new Map([
  [DEFAULT_CLIENT_FD, 'the sandbox-me-here handshake socket (SBX_CLIENT_FD)'],
  [SETUP_FD_TARGET, 'the setup socket between clone and exec'],
  [EXEC_FD_TARGET, 'the exec fd between clone and exec'],
]);

export class Ipc {
  private readonly mappings = new Map<number, FdMapping>();
  private commsChannel: Comms | null = null;
  private commsOptions: CommsOptions = {};

  /** The sandboxee gets a copy of `localFd` as `sandboxeeFd`. `localFd` stays the caller's. */
  mapFd(localFd: number, sandboxeeFd: number): this {
    checkFd('mapFd: localFd', localFd);
    this.claim(sandboxeeFd);
    this.mappings.set(sandboxeeFd, { local: localFd, sandboxee: sandboxeeFd, owned: false });
    return this;
  }

  /** Makes a socketpair: the sandboxee gets one end as `sandboxeeFd`; returns the executor's end (the caller owns it). */
  receiveFd(sandboxeeFd: number): number {
    this.claim(sandboxeeFd);
    const [ours, theirs] = native().socketpair(false, false);
    this.mappings.set(sandboxeeFd, { local: theirs, sandboxee: sandboxeeFd, owned: true });
    return ours;
  }

  /** The executor's end of the sandboxee's Comms channel (the sandboxee's end is fd 1023). */
  get comms(): Comms {
    if (!this.commsChannel) {
      this.claim(DEFAULT_COMMS_FD);
      const [ours, theirs] = Comms.pair(this.commsOptions);
      this.commsChannel = ours;
      this.mappings.set(DEFAULT_COMMS_FD, { local: theirs, sandboxee: DEFAULT_COMMS_FD, owned: true });
    }
    return this.commsChannel;
  }

  /** Options (e.g. maxMessageSize) for the Comms channel; set before first use of `comms`. */
  setCommsOptions(options: CommsOptions): this {
    if (this.commsChannel)
      throw new ExecutorError('IPC_IN_USE', 'ipc.setCommsOptions() must come before the first use of ipc.comms');
    this.commsOptions = options;
    return this;
  }

  /** @internal */
  hasComms(): boolean {
    return this.commsChannel !== null;
  }

  /** @internal Every mapping, in sandboxee fd order. */
  list(): FdMapping[] {
    return [...this.mappings.values()].sort((a, b) => a.sandboxee - b.sandboxee);
  }

  /** @internal After the sandbox started: close the far ends we made. */
  releaseOwned(): void {
    for (const m of this.mappings.values()) {
      if (m.owned) {
        closeQuietly(m.local);
        m.owned = false;
      }
    }
  }

  private claim(sandboxeeFd: number): void {
    checkFd('sandboxee fd', sandboxeeFd);
    if (sandboxeeFd > 1023 && sandboxeeFd !== DEFAULT_COMMS_FD)
      throw new RangeError(`sandboxee fd ${sandboxeeFd} is above 1023`);
    const reserved = RESERVED.get(sandboxeeFd);
    if (reserved)
      throw new RangeError(
        `sandboxee fd ${sandboxeeFd} is reserved by sbx: it is ${reserved} (1020, 1021 and 1022 are sbx's)`,
      );
    if (this.mappings.has(sandboxeeFd))
      throw new ExecutorError('FD_ALREADY_MAPPED', `sandboxee fd ${sandboxeeFd} is already mapped`);
  }
}

function checkFd(what: string, fd: number): void {
  if (!Number.isInteger(fd) || fd < 0) throw new TypeError(`${what} must be a non-negative integer, got ${String(fd)}`);
}
