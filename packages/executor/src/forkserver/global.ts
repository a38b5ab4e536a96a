// forkserver.ts: the executor's handle on the global forkserver (native/forkserver): started
// lazily, once per process, single-threaded C. It clones every sandboxee and reaps it.
import { Comms, CommsError, SbxError, Tag, type Message } from '@sbx/client';
import { native, type NativeWatcher } from '@sbx/client/internal';
import { FsTag, Op, OpList, type SetupFailure } from './protocol.js';
import { decodeExited, EXITED_SIZE, InFlight, sendRequest, type Exited } from './link.js';
import { decodePoolStats, poolSize, type SpawnPoolStats } from './pool-settings.js';
import { leaseSandboxIds, sandboxIdRange, type SandboxIds } from '../sandbox/sandbox-ids.js';
import { forkserverPath } from './paths.js';

export type { Exited } from './link.js';

export interface Spawned {
  pid: number;
  /** pidfd of the sandboxee; the caller owns it. */
  pidfd: number;
  /** A spawn-pool slot runs in a cgroup the forkserver made for it: use this one instead of the requested one. */
  cgroup?: string;
  /** A spawn-pool slot has a host uid (and gid) of the pool's leased ids: the sandbox runs as this one. */
  uid?: number;
}

/** SPAWNED's fixed part, before its message. */
const SPAWNED_SIZE = 24;

interface Pending {
  resolve: (s: Spawned) => void;
  reject: (e: Error) => void;
}

/** The global forkserver failed (FORKSERVER_DIED, SPAWN_FAILED, PROTOCOL). */
export class ForkServerError extends SbxError {
  /** SPAWN_FAILED: the step that failed, its errno and flags (the kind of the failure, as data). */
  failure?: SetupFailure;
}

export class ForkServer {
  private static instance: ForkServer | null = null;

  private readonly comms: Comms;
  private readonly inFlight: InFlight;
  private readonly processPid: number;
  private readonly pidfd: number;
  /** Fires when the forkserver exits (its pidfd becomes readable). */
  private readonly exitWatch: NativeWatcher;
  private readonly pending = new Map<bigint, Pending>();
  private readonly exitWaiters = new Map<bigint, (e: Exited) => void>();
  private readonly early = new Map<bigint, Exited>();
  private awaitingPidfd: { id: bigint; pid: number; cgroup?: string; uid?: number } | null = null;
  /** Sandbox ids leased for pool slots (pool.h): the list only grows while this forkserver lives. */
  private readonly poolIds: SandboxIds[] = [];
  /** The pool size this forkserver was last told (it starts with none). */
  private poolSizeSent = 0;
  /** POOL_STATS queries, answered in order. */
  private readonly statsWaiters: { resolve: (s: SpawnPoolStats) => void; reject: (e: Error) => void }[] = [];
  private nextId = 1n;
  private dead: Error | null = null;
  private reaped = false;

  /** The process-wide forkserver, started on first use (and again if it died). */
  static shared(): ForkServer {
    if (!ForkServer.instance || ForkServer.instance.dead) ForkServer.instance = new ForkServer();
    return ForkServer.instance;
  }

  private constructor() {
    const size = poolSize(); // a bad SBX_SPAWN_POOL throws here, before anything is started
    const n = native();
    const [ours, theirs] = n.socketpair(false, false);
    let started: ReturnType<typeof n.spawnForkserver>;
    try {
      started = n.spawnForkserver(forkserverPath(), theirs);
    } catch (err) {
      n.close(ours);
      throw new ForkServerError('FORKSERVER_DIED', `sbx: the forkserver could not start: ${(err as Error).message}`);
    } finally {
      n.close(theirs);
    }
    this.processPid = started.pid;
    this.pidfd = started.pidfd;
    this.exitWatch = new n.Watcher(this.pidfd, () => this.onExit());
    this.exitWatch.start(true, false);
    this.exitWatch.unref();
    this.comms = new Comms(ours, { maxMessageSize: 1 << 20 });
    this.inFlight = new InFlight(this.comms);
    this.comms.unref();
    this.comms.onMessage(
      (m) => this.onMessage(m),
      (e) => this.die(e),
    );
    if (size > 0) this.setPool(size);
  }

  /** The process-wide forkserver if it is running (no start). */
  static running(): ForkServer | null {
    return ForkServer.instance && !ForkServer.instance.dead ? ForkServer.instance : null;
  }

  /** SBX_FS_POOL: how many slots to keep ready (0: none; the slots are killed). A root executor
   *  leases two sandbox ids per slot for them (one for a waiting slot, one for the sandbox a slot
   *  became, until it is reaped) and sends the list with the range. */
  setPool(size: number): void {
    if (this.dead) return;
    if (size === 0 && this.poolSizeSent === 0) return; // nothing to drop: spare a one-shot CLI a message
    this.poolSizeSent = size;
    const range = sandboxIdRange();
    if (!range || size === 0) {
      const b = Buffer.alloc(4);
      b.writeUInt32LE(size);
      this.comms.sendTLV(FsTag.Pool, b).catch((e: Error) => this.die(e));
      return;
    }
    try {
      while (this.poolIds.length < 2 * size) this.poolIds.push(leaseSandboxIds(range));
    } catch {
      // the range is full: the pool gets what could be leased (fewer slots of that layout)
    }
    const b = Buffer.alloc(12 + 4 * this.poolIds.length);
    b.writeUInt32LE(size, 0);
    b.writeUInt32LE(range.first, 4);
    b.writeUInt32LE(range.count, 8);
    this.poolIds.forEach((ids, i) => {
      b.writeUInt32LE(ids.uid, 12 + 4 * i);
    });
    this.comms.sendTLV(FsTag.Pool, b).catch((e: Error) => this.die(e));
  }

  /** SBX_FS_POOL_STATS: the pool as the forkserver sees it now. */
  async poolStats(): Promise<SpawnPoolStats> {
    if (this.dead) throw this.dead;
    this.inFlight.hold();
    try {
      const answer = new Promise<SpawnPoolStats>((resolve, reject) => this.statsWaiters.push({ resolve, reject }));
      await this.comms.sendTLV(FsTag.PoolStats, Buffer.alloc(0));
      return await answer;
    } finally {
      this.inFlight.release();
    }
  }

  get pid(): number {
    return this.processPid;
  }

  /** The forkserver process ended: reap it (it is our child) and fail everything in flight. */
  private onExit(): void {
    const status = native().reapPidfd(this.pidfd);
    if (status < 0) return;
    this.exitWatch.close();
    native().close(this.pidfd);
    this.reaped = true;
    // Its children are gone with it (an orderly shutdown): the slots' ids are free again.
    for (const ids of this.poolIds.splice(0)) ids.release();
    const how = (status & 0x7f) !== 0 ? `signal ${status & 0x7f}` : `code ${(status >> 8) & 0xff}`;
    this.die(new ForkServerError('FORKSERVER_DIED', `sbx: the forkserver exited (${how})`));
  }

  /** Sends a spawn request (the op list and its fds, which stay the caller's). `mark`: the trace's
   *  'op list' (serialized) and 'request write' (sent) stages. */
  async spawn(ops: OpList, mark?: (stage: string) => void): Promise<{ id: bigint; spawned: Spawned }> {
    if (this.dead) throw this.dead;
    const id = this.nextId++;
    const payload = Buffer.concat([new OpList().u64(Op.RequestId, id).toBuffer(), ops.toBuffer()]);
    mark?.('op list');
    this.inFlight.hold();
    try {
      const spawned = new Promise<Spawned>((resolve, reject) => this.pending.set(id, { resolve, reject }));
      await sendRequest(this.comms, FsTag.Spawn, payload, ops.fds);
      mark?.('request write');
      return { id, spawned: await spawned };
    } catch (err) {
      this.pending.delete(id);
      this.inFlight.release();
      throw err;
    }
  }

  /** SBX_FS_SET_WALLTIME: request `id`'s walltime becomes `ms` from now (0: none). Kept by the
   *  forkserver like the first one, so it holds while this event loop is busy. */
  setWalltime(id: bigint, ms: number): void {
    if (this.dead) return;
    const b = Buffer.alloc(16);
    b.writeBigUInt64LE(id, 0);
    b.writeBigUInt64LE(BigInt(Math.max(0, Math.round(ms))), 8);
    this.comms.sendTLV(FsTag.SetWalltime, b).catch((e: Error) => this.die(e));
  }

  /** Resolves when the forkserver has reaped the sandboxee of request `id`. */
  waitExit(id: bigint): Promise<Exited> {
    const early = this.early.get(id);
    if (early) {
      this.early.delete(id);
      this.inFlight.release();
      return Promise.resolve(early);
    }
    if (this.dead) return Promise.reject(this.dead);
    return new Promise((resolve, reject) => {
      this.exitWaiters.set(id, (e) => {
        this.deathWaiters.delete(reject); // else the set grows by one per sandbox for ever
        this.inFlight.release();
        resolve(e);
      });
      this.deathWaiters.add(reject);
    });
  }

  private readonly deathWaiters = new Set<(e: Error) => void>();

  private onMessage(m: Message): void {
    try {
      if (this.awaitingPidfd) {
        const { id, pid, cgroup, uid } = this.awaitingPidfd;
        this.awaitingPidfd = null;
        if (m.tag !== Tag.Fd)
          throw new ForkServerError('PROTOCOL', 'sbx: the forkserver sent no pidfd after a spawn reply');
        this.pending
          .get(id)
          ?.resolve({ pid, pidfd: m.fd, ...(cgroup ? { cgroup } : {}), ...(uid !== undefined ? { uid } : {}) });
        this.pending.delete(id);
        return;
      }
      const d = m.data;
      if (m.tag === FsTag.Spawned && d.length >= SPAWNED_SIZE) {
        // u64 request_id | i32 err | u32 pid | u32 step | u32 flags | message (protocol.h)
        const id = d.readBigUInt64LE(0);
        const err = d.readInt32LE(8);
        const pid = d.readUInt32LE(12);
        const message = d.subarray(SPAWNED_SIZE).toString('utf8');
        if (err === 0) {
          // A pooled sandbox: "uid=N" (its host uid, pool.h) first, then "cgroup=PATH" (last: a path may hold spaces)
          const m1 = /^(?:uid=(\d+))? ?(?:cgroup=(.*))?$/s.exec(message);
          const uid = m1?.[1] !== undefined ? Number(m1[1]) : undefined;
          const cgroup = m1?.[2];
          this.awaitingPidfd = { id, pid, ...(cgroup ? { cgroup } : {}), ...(uid !== undefined ? { uid } : {}) };
          return;
        }
        const p = this.pending.get(id);
        this.pending.delete(id);
        this.inFlight.release();
        const failed = new ForkServerError(
          'SPAWN_FAILED',
          message || `the forkserver could not start the sandboxee (errno ${-err})`,
        );
        failed.failure = { step: d.readUInt32LE(16), errno: -err, flags: d.readUInt32LE(20), message: failed.message };
        p?.reject(failed);
        return;
      }
      if (m.tag === FsTag.PoolStats && d.length >= 48) {
        const w = this.statsWaiters.shift();
        if (!w) throw new ForkServerError('PROTOCOL', 'sbx: the forkserver sent pool stats nobody asked for');
        w.resolve(decodePoolStats(d));
        return;
      }
      if (m.tag === FsTag.Exited && d.length >= EXITED_SIZE) {
        const { id, exited: e } = decodeExited(d);
        const w = this.exitWaiters.get(id);
        this.exitWaiters.delete(id);
        if (w) w(e);
        else this.early.set(id, e);
        return;
      }
      throw new ForkServerError(
        'PROTOCOL',
        `sbx: unexpected message from the forkserver (tag 0x${m.tag.toString(16)}, ${d.length} bytes)`,
      );
    } catch (err) {
      this.die(err as Error);
    }
  }

  private die(err: Error): void {
    if (this.dead) return;
    this.dead =
      err instanceof CommsError
        ? new ForkServerError('FORKSERVER_DIED', `sbx: lost the forkserver: ${err.message}`)
        : err;
    for (const p of this.pending.values()) p.reject(this.dead);
    this.pending.clear();
    for (const w of this.statsWaiters.splice(0)) w.reject(this.dead);
    for (const r of this.deathWaiters) r(this.dead);
    this.deathWaiters.clear();
    this.comms.close();
    // Without its comms it exits by itself (EOF) and takes its sandboxees along; make sure. SIGTERM:
    // its orderly shutdown ends every tree, even one whose init does not cooperate (children.h). (Once
    // reaped, its pidfd is closed and the number may be another fd's: never signal through it.)
    if (!this.reaped) native().pidfdSendSignal(this.pidfd, 15);
  }
}
