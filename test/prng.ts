// prng.ts: the seeded generator of the property and model tests (deterministic: a failing seed
// reproduces its case). mulberry32, 32 bits of state.

/** A generator of numbers in [0, 1). */
export function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The helpers the property tests draw with. */
export function rng(seed: number) {
  const next = random(seed);
  const int = (n: number): number => Math.floor(next() * n);
  const u32 = (): number => int(0x10000) * 0x10000 + int(0x10000);
  return {
    next,
    int,
    u32,
    u64: (): bigint => (BigInt(u32()) << 32n) | BigInt(u32()),
    pick: <T>(xs: readonly T[]): T => xs[int(xs.length)]!,
    chance: (p: number): boolean => next() < p,
  };
}
export type Rng = ReturnType<typeof rng>;
