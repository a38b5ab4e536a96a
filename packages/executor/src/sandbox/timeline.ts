// timeline.ts: the trace of one sandbox (Executor option `trace: true`, `sbx run --trace`). Every
// stage from the API call to the Result gets a timestamp on one clock, CLOCK_MONOTONIC: the
// executor's marks (process.hrtime, which is that clock on Linux) and the forkserver's and the
// child's (SETUP_TRACE, native/forkserver/trace.h) line up without conversion.
import { SETUP_STEP_NAMES } from '../forkserver/protocol.js';

/** One stage of a sandbox's life, at its end. */
export interface TimelineStage {
  /** What ended here ("policy compile", "mount", "exit report"...). */
  stage: string;
  /** Which process did it. */
  by: 'executor' | 'forkserver' | 'child';
  /** Microseconds from runAsync() to the end of the stage. */
  atUs: number;
  /** Microseconds since the stage before it (the stage's own time, where stages follow each other). */
  tookUs: number;
  /** A detail: "cached" or "compiled" for the policy, "slot" or "clone" for the spawn... */
  detail?: string;
}

/** Steps the forkserver runs itself (the others run in the child). */
const FORKSERVER_STEPS = new Set(['request', 'open', 'cgroup']);

export class Timeline {
  private readonly t0 = process.hrtime.bigint();
  private readonly marks: { stage: string; by: TimelineStage['by']; ns: bigint; detail?: string }[] = [];

  /** Marks the end of an executor stage, now (or at `ns`, CLOCK_MONOTONIC, when another thread took the time). */
  mark(stage: string, detail?: string, ns: bigint = process.hrtime.bigint()): void {
    this.marks.push({ stage, by: 'executor', ns, ...(detail ? { detail } : {}) });
  }

  /** Adds the forkserver's and the child's marks (SETUP_TRACE, CLOCK_MONOTONIC ns). */
  addNative(entries: readonly { step: number; ns: bigint }[]): void {
    for (const e of entries) {
      const stage = SETUP_STEP_NAMES[e.step] ?? `step ${e.step}`;
      this.marks.push({ stage, by: FORKSERVER_STEPS.has(stage) ? 'forkserver' : 'child', ns: e.ns });
    }
  }

  /** The stages in time order. */
  stages(): TimelineStage[] {
    const sorted = [...this.marks].sort((a, b) => (a.ns < b.ns ? -1 : a.ns > b.ns ? 1 : 0));
    let prev = this.t0;
    return sorted.map((m) => {
      const s: TimelineStage = {
        stage: m.stage,
        by: m.by,
        atUs: Number(m.ns - this.t0) / 1000,
        tookUs: Number(m.ns - prev) / 1000,
        ...(m.detail ? { detail: m.detail } : {}),
      };
      prev = m.ns;
      return s;
    });
  }
}

/** The stages as a table for people (sbx run --trace): one line each, µs. */
export function formatTimeline(stages: readonly TimelineStage[]): string {
  const rows = stages.map((s) => [
    s.atUs.toFixed(0),
    `+${s.tookUs.toFixed(0)}`,
    s.by,
    s.detail ? `${s.stage} (${s.detail})` : s.stage,
  ]);
  const head = ['at µs', 'took µs', 'by', 'stage'];
  const width = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) =>
    r.map((c, i) => (i < 2 ? c.padStart(width[i]!) : i < 3 ? c.padEnd(width[i]!) : c)).join('  ');
  return [line(head), ...rows.map(line)].join('\n');
}
