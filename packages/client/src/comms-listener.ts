// comms-listener.ts: a listening unix socket whose connections become Comms channels (Sandbox2's
// ListeningComms): on a filesystem path or an abstract name. accept() waits on the event loop
// (a uv_poll watcher), never blocks it.
import { unlinkSync } from 'node:fs';
import { Comms, type CommsOptions, type UnixAddress, describeAddress, addressError, unixAddress } from './comms.js';
import { CommsError } from './errors.js';
import { closeQuietly, native, type NativeWatcher } from './native.js';

export interface ListenOptions extends CommsOptions {
  /** listen() backlog (default 16). */
  readonly backlog?: number;
}

export class CommsListener {
  readonly #fd: number;
  readonly #watcher: NativeWatcher;
  readonly #options: CommsOptions;
  readonly #path: string | null;
  readonly #waiters: Array<{ resolve: (c: Comms) => void; reject: (e: Error) => void }> = [];
  #closed = false;
  /** The watcher's callback reaches this listener only through here, emptied on close (see Comms). */
  readonly #target: { self: CommsListener | null };

  /**
   * Listens on `address` (a path, or { abstract: name }). A path that exists is EADDRINUSE (an
   * old socket file is the caller's to remove); close() removes the socket file it made.
   */
  static listen(address: UnixAddress, options: ListenOptions = {}): CommsListener {
    return new CommsListener(address, options);
  }

  constructor(address: UnixAddress, options: ListenOptions = {}) {
    const { name, abstract } = unixAddress(address, 'CommsListener.listen');
    const { backlog = 16, ...commsOptions } = options;
    if (!Number.isInteger(backlog) || backlog < 1 || backlog > 4096)
      throw new TypeError(`CommsListener.listen: backlog must be an integer 1..4096, got ${String(backlog)}`);
    try {
      this.#fd = native().unixListen(name, abstract, backlog);
    } catch (e) {
      throw addressError(`CommsListener.listen(${describeAddress(address)})`, e);
    }
    this.#path = abstract ? null : name;
    this.#options = commsOptions;
    const target: { self: CommsListener | null } = { self: this };
    this.#target = target;
    this.#watcher = new (native().Watcher)(this.#fd, (readable) => {
      const self = target.self;
      if (readable && self) self.#drain();
    });
    this.#watcher.unref();
  }

  /** The next connection as a Comms. Rejects with CommsError CLOSED once the listener is closed. */
  accept(): Promise<Comms> {
    if (this.#closed) return Promise.reject(new CommsError('CLOSED', 'CommsListener.accept: the listener is closed'));
    return new Promise((resolve, reject) => {
      this.#waiters.push({ resolve, reject });
      this.#watcher.ref();
      this.#watcher.start(true, false);
      this.#drain();
    });
  }

  /** Stops listening, removes the socket file (path listeners) and fails pending accepts. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#watcher.close();
    this.#target.self = null;
    closeQuietly(this.#fd);
    if (this.#path !== null) {
      try {
        unlinkSync(this.#path);
      } catch {}
    }
    const err = new CommsError('CLOSED', 'CommsListener.accept: the listener was closed');
    for (const w of this.#waiters.splice(0)) w.reject(err);
  }

  #drain(): void {
    while (this.#waiters.length > 0 && !this.#closed) {
      let fd: number;
      try {
        fd = native().unixAccept(this.#fd);
      } catch (e) {
        this.#waiters.shift()!.reject(addressError('CommsListener.accept', e));
        continue;
      }
      if (fd < 0) return; // nothing pending: the watcher calls again
      this.#waiters.shift()!.resolve(new Comms(fd, this.#options));
    }
    if (this.#waiters.length === 0 && !this.#closed) {
      this.#watcher.stop();
      this.#watcher.unref();
    }
  }
}
