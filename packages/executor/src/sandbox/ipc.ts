// ipc.ts: the fds a sandboxee gets (Sandbox2's IPC): mapped fds, socketpairs whose far end it
// receives, and the Comms channel at fd 1023.
import { Comms, DEFAULT_CLIENT_FD, DEFAULT_COMMS_FD, FD_MAPPINGS_ENV, type CommsOptions } from '@sbx/client';
import { closeQuietly, native } from '@sbx/client/internal';
import { ExecutorError } from './executor-error.js';
import { EXEC_FD_TARGET, SETUP_FD_TARGET } from '../forkserver/protocol.js';

/** A fd name: what the sandboxee asks getMappedFd() for. */
const FD_NAME = /^[A-Za-z0-9_.-]{1,64}$/;
/** Named fds get numbers counting down from here (below sbx's 1020..1023), out of the way of numbered ones. */
const FIRST_NAMED_FD = 1019;

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
  private readonly names = new Map<string, number>();

  /**
   * The sandboxee gets a copy of `localFd` as `sandboxeeFd`, or under a name (Sandbox2's
   * MapFd(local, name)): a free fd number it looks up with getMappedFd(name) (@sbx/client, or
   * sbx_client_get_mapped_fd in C). `localFd` stays the caller's.
   */
  mapFd(localFd: number, sandboxeeFdOrName: number | string): this {
    checkFd('mapFd: localFd', localFd);
    const target = this.target(sandboxeeFdOrName, 'mapFd');
    this.mappings.set(target, { local: localFd, sandboxee: target, owned: false });
    return this;
  }

  /**
   * Makes a socketpair: the sandboxee gets one end as `sandboxeeFd` (or under a name, as mapFd);
   * returns the executor's end (the caller owns it).
   */
  receiveFd(sandboxeeFdOrName: number | string): number {
    const target = this.target(sandboxeeFdOrName, 'receiveFd');
    const [ours, theirs] = native().socketpair(false, false);
    this.mappings.set(target, { local: theirs, sandboxee: target, owned: true });
    return ours;
  }

  /** The named fds: name -> fd number inside the sandboxee. */
  get namedFds(): ReadonlyMap<string, number> {
    return new Map(this.names);
  }

  /** @internal What the sandboxee's environment gets: the name table, when there are names. */
  env(): Record<string, string> {
    if (this.names.size === 0) return {};
    return { [FD_MAPPINGS_ENV]: [...this.names].map(([n, fd]) => `${n}=${fd}`).join(',') };
  }

  private target(fdOrName: number | string, method: string): number {
    if (typeof fdOrName !== 'string') {
      this.claim(fdOrName);
      return fdOrName;
    }
    if (!FD_NAME.test(fdOrName))
      throw new TypeError(
        `${method}: a fd name is 1..64 characters of A-Z a-z 0-9 _ . -, got ${JSON.stringify(fdOrName)}`,
      );
    if (this.names.has(fdOrName))
      throw new ExecutorError('FD_ALREADY_MAPPED', `${method}: the name "${fdOrName}" is already mapped`);
    let fd = FIRST_NAMED_FD;
    while (this.mappings.has(fd) || RESERVED.has(fd)) fd--;
    if (fd < 3) throw new ExecutorError('FD_ALREADY_MAPPED', `${method}: no free fd number left for "${fdOrName}"`);
    this.claim(fd);
    this.names.set(fdOrName, fd);
    return fd;
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
