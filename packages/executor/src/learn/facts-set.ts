// facts-set.ts: what learning runs saw: per syscall number, the distinct recorded argument tuples.
import { syscallName } from '../policy/syscalls.js';
import type { Arch } from '../policy/syscalls.js';
import { ARG_FACTS } from './facts.js';

export class LearnedFacts {
  readonly arch: Arch;
  /** nr -> key ("a,b") -> the recorded argument values, in ARG_FACTS order. */
  readonly #seen = new Map<number, Map<string, number[]>>();

  constructor(arch: Arch) {
    this.arch = arch;
  }

  /** Records a fact from the monitor: all six register arguments (only ARG_FACTS' are kept). */
  addFromRegisters(nr: number, args: readonly bigint[]): void {
    const name = syscallName(this.arch, nr);
    const spec = name ? ARG_FACTS[name] : undefined;
    const values = (spec?.args ?? []).map((i) => Number(BigInt.asUintN(32, args[i] ?? 0n)));
    this.add(nr, values);
  }

  add(nr: number, values: readonly number[]): void {
    let m = this.#seen.get(nr);
    if (!m) this.#seen.set(nr, (m = new Map()));
    m.set(values.join(','), [...values]);
  }

  merge(other: LearnedFacts): void {
    for (const [nr, m] of other.#seen) for (const v of m.values()) this.add(nr, v);
  }

  /** Syscall numbers seen, ascending. */
  get syscalls(): number[] {
    return [...this.#seen.keys()].sort((a, b) => a - b);
  }

  /** The recorded argument tuples of one syscall. */
  valuesOf(nr: number): number[][] {
    return [...(this.#seen.get(nr)?.values() ?? [])];
  }

  /** Number of distinct facts. */
  get size(): number {
    let n = 0;
    for (const m of this.#seen.values()) n += m.size;
    return n;
  }
}
