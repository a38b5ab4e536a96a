// long-lived.ts: what a Sandbox offers for sandboxes that run a long time (Sandbox2's
// AwaitResultWithTimeout, set_walltime_limit, IsTerminated): waiting with a timeout, resetting
// the wall-time limit of a running sandbox, and whether it has ended.
import type { Result } from './result.js';

/** The longest walltime setWalltimeLimit() takes (a month, in ms): past it, say 0 (none). */
const MAX_WALLTIME_MS = 31 * 24 * 3600 * 1000;

function checkMs(ms: unknown, method: string, max: number): number {
  if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 0 || ms > max)
    throw new TypeError(`Sandbox.${method}: milliseconds must be a number from 0 to ${max}, got ${String(ms)}`);
  return ms;
}

export class LongLived {
  /** The Result is known. */
  terminated = false;
  /** setWalltimeLimit() was called: the Executor's walltime no longer applies. */
  walltimeOverridden = false;
  /** The limit setWalltimeLimit() set, in seconds (for the TIMEOUT reason), or null. */
  walltimeSeconds: number | null = null;
  private pending: { ms: number; apply: (ms: number) => boolean } | null = null;

  /** The Result promise, marking the end (before anyone awaiting it runs) and calling onEnd. */
  track(result: Promise<Result>, onEnd: (r: Result) => void): Promise<Result> {
    return result.then((r) => {
      this.terminated = true;
      onEnd(r);
      return r;
    });
  }

  /** The Result, or undefined when it did not come within ms. */
  async awaitWithTimeout(result: Promise<Result>, ms: number): Promise<Result | undefined> {
    checkMs(ms, 'awaitResult(timeoutMs)', 2 ** 31 - 1);
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), ms)));
    return Promise.race([result, late]).finally(() => clearTimeout(timer));
  }

  /**
   * A new walltime of ms from now (0: none). `apply` hands it to whoever keeps the walltime and
   * says false while the sandboxee is not spawned yet: then it is applied by spawned().
   */
  setWalltime(ms: number, how: { finished: boolean; apply: (ms: number) => boolean }): void {
    checkMs(ms, 'setWalltimeLimit(ms)', MAX_WALLTIME_MS);
    if (how.finished || this.terminated) return;
    const rounded = ms === 0 ? 0 : Math.max(1, Math.round(ms));
    this.walltimeOverridden = true;
    this.walltimeSeconds = rounded / 1000;
    this.pending = how.apply(rounded) ? null : { ms: rounded, apply: how.apply };
  }

  /** The sandboxee was spawned: a walltime set meanwhile is applied now. */
  spawned(): void {
    const p = this.pending;
    this.pending = null;
    if (p) p.apply(p.ms);
  }
}
