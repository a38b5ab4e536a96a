// fork-trace.ts: where the time of one custom-fork request goes (docs/architecture.md, "Tracing a
// fork request"). Asked for with `new Executor(forkServer, { trace: true })`; the Sandbox then
// holds a ForkTrace. Three processes stamp it, all on CLOCK_MONOTONIC (process.hrtime.bigint() is
// the same clock): the executor as the request goes out and its replies come in, the forkserver
// in its FORKED reply, the child in a TRACE message after GO (native/client/src/trace.h). The
// forkserver and the child are sandboxees: their stamps are their word, good for a diagnosis only.

/** Who stamped a stage. */
export type ForkTraceProcess = 'executor' | 'forkserver' | 'child';

/** One stage: its name, who stamped it, when (µs from the request; negative: done ahead). */
export interface ForkTraceStage {
  stage: string;
  process: ForkTraceProcess;
  /** µs since the executor started the request (the Sandbox's start). */
  us: number;
}

/** The executor's stages, in the order a request passes them. */
export const EXECUTOR_STAGES = [
  'request',
  'request sent',
  'FORKED received',
  'pidfd checked',
  'HELLO received',
  'INSTALLED received',
  'listener taken',
  'monitor watching',
  'GO sent',
  'sandboxed spare taken',
  'request assigned',
  'first Comms reply',
] as const;
export type ExecutorStage = (typeof EXECUTOR_STAGES)[number];

/** Wire stage numbers of the forkserver and the child: mirrors native/client/src/trace.h. */
export const WIRE_STAGES: Readonly<Record<number, { process: ForkTraceProcess; stage: string }>> = {
  1: { process: 'forkserver', stage: 'request received' },
  2: { process: 'forkserver', stage: 'spare assigned' },
  3: { process: 'forkserver', stage: 'fork() returned' },
  4: { process: 'forkserver', stage: 'child isolated (reported)' },
  5: { process: 'forkserver', stage: 'runtime prepared (DOFORK, workers parked)' },
  16: { process: 'child', stage: 'fork() returned' },
  17: { process: 'child', stage: 'isolated (setsid, caps, NO_NEW_PRIVS, Landlock)' },
  18: { process: 'child', stage: 'runtime repaired (uv_loop_fork)' },
  19: { process: 'child', stage: 'spare got the request' },
  20: { process: 'child', stage: 'fds in place' },
  21: { process: 'child', stage: 'back in JS' },
  22: { process: 'child', stage: 'sandboxMeHere() called' },
  23: { process: 'child', stage: 'HELLO sent' },
  24: { process: 'child', stage: 'policy received' },
  25: { process: 'child', stage: 'NO_NEW_PRIVS' },
  26: { process: 'child', stage: 'filter installed (TSYNC)' },
  27: { process: 'child', stage: 'INSTALLED sent' },
  28: { process: 'child', stage: 'GO received' },
  29: { process: 'child', stage: 'libuv repaired (uv_loop_fork, before the JS fix-ups)' },
};

/** Handshake tag of the child's stamps (client → executor, after GO). Mirrors trace.h. */
export const TRACE_TAG = 0x00005315;
/** Most records one message may carry (trace.h SBX_TRACE_MAX). */
export const TRACE_MAX_RECORDS = 24;
const RECORD_SIZE = 16;
/** A stamp further than this from the request is not believed (a child's garbage). */
const PLAUSIBLE_NS = 600_000_000_000n;

/** The stages of one traced fork request, from the executor, the forkserver and the child. */
export class ForkTrace {
  private readonly startNs: bigint;
  private readonly entries: Array<{ stage: string; process: ForkTraceProcess; ns: bigint }> = [];

  /** @internal made by the Sandbox of a traced request, at its start */
  constructor(startNs: bigint = process.hrtime.bigint()) {
    this.startNs = startNs;
    this.entries.push({ stage: 'request', process: 'executor', ns: startNs });
  }

  /** @internal the executor reached `stage` now (only the first time counts) */
  mark(stage: ExecutorStage): void {
    if (this.entries.some((e) => e.process === 'executor' && e.stage === stage)) return;
    this.entries.push({ stage, process: 'executor', ns: process.hrtime.bigint() });
  }

  /**
   * @internal Adds stamps in trace.h's wire form (u32 count | u32 0 | count × (u32 stage | u32 0 |
   * u64 ns)) from `from`. Returns false (and adds nothing) when the bytes are not that form or a
   * stage does not belong to `from`.
   */
  addRecords(from: 'forkserver' | 'child', data: Buffer): boolean {
    if (data.length < 8) return false;
    const n = data.readUInt32LE(0);
    if (n > TRACE_MAX_RECORDS || data.length !== 8 + n * RECORD_SIZE) return false;
    const add: typeof this.entries = [];
    for (let i = 0; i < n; i++) {
      const off = 8 + i * RECORD_SIZE;
      const known = WIRE_STAGES[data.readUInt32LE(off)];
      const ns = data.readBigUInt64LE(off + 8);
      if (!known || known.process !== from) return false;
      const d = ns - this.startNs;
      if (d > PLAUSIBLE_NS || d < -PLAUSIBLE_NS) return false;
      add.push({ stage: known.stage, process: from, ns });
    }
    this.entries.push(...add);
    return true;
  }

  /** The stages so far, in time order (ties keep the order they were added in). */
  get stages(): ForkTraceStage[] {
    return this.entries
      .map((e, i) => ({ e, i }))
      .sort((a, b) => (a.e.ns < b.e.ns ? -1 : a.e.ns > b.e.ns ? 1 : a.i - b.i))
      .map(({ e }) => ({ stage: e.stage, process: e.process, us: Number(e.ns - this.startNs) / 1000 }));
  }

  /** A table: µs from the request, the step from the previous stage, who, what. */
  toString(): string {
    let prev: number | null = null;
    const lines = ['      µs    +µs  process     stage'];
    for (const s of this.stages) {
      const step = prev === null || s.us < 0 ? '' : (s.us - prev).toFixed(0);
      if (s.us >= 0) prev = s.us;
      lines.push(
        `${s.us.toFixed(0).padStart(8)} ${step.padStart(6)}  ${s.process.padEnd(10)}  ${s.stage}${s.us < 0 ? ' (ahead)' : ''}`,
      );
    }
    return lines.join('\n');
  }
}
