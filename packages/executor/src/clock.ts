// clock.ts: milliseconds on the monotonic clock. Node's global `performance` loads perf_hooks and
// its dozen internal modules on first use, a cost every `sbx run` would pay for two timestamps.

/** Milliseconds on CLOCK_MONOTONIC (fractional), as performance.now() but with its own origin. */
export function monotonicMs(): number {
  const [s, ns] = process.hrtime();
  return s * 1e3 + ns / 1e6;
}
