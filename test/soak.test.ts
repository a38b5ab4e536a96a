// Leak and load soak (the CI-sized one; bench/soak.mjs runs the full 10,000 + 200 and prints the
// figures): 1,000 sandboxes of /bin/true one after another, then 50 at once. Afterwards the
// executor (this worker) has the fds and threads it had, its RSS grew by less than a bound, the
// forkserver holds the fds it held, no sandbox process or zombie is left among our descendants,
// and no per-sandbox cgroup is left behind.
import { describe, expect, it } from 'vitest';
// @ts-expect-error: a plain .mjs module without types (bench/soak.mjs)
import { runSoak } from '../bench/soak.mjs';

interface Snapshot {
  fds: number;
  fdTargets: Record<string, string>;
  threads: number;
  rssMiB: number;
  heapMiB: number;
  arrayBuffersMiB: number;
  forkserverFds: number;
  forkserverEntries: number | null;
  descendants: number;
  zombies: number;
  cgroups: number | null;
}
interface Figures {
  before: Snapshot;
  afterSequential: Snapshot;
  after: Snapshot;
  sequential: { runs: number; seconds: number; perSecond: number };
  concurrent: { runs: number; seconds: number; perSecond: number };
}

const SEQUENTIAL = Number(process.env.SBX_SOAK_SEQUENTIAL ?? 1000);
const CONCURRENT = Number(process.env.SBX_SOAK_CONCURRENT ?? 50);

describe('soak', () => {
  it(`${SEQUENTIAL} sequential and ${CONCURRENT} concurrent sandboxes leave the executor and the host as they were`, async () => {
    const f = (await runSoak({ sequential: SEQUENTIAL, concurrent: CONCURRENT })) as Figures;
    const brief = ({ fdTargets: _, ...rest }: Snapshot) => JSON.stringify(rest);
    console.log(
      `soak: ${f.sequential.runs} sequential in ${f.sequential.seconds} s (${f.sequential.perSecond}/s), ` +
        `${f.concurrent.runs} concurrent in ${f.concurrent.seconds} s; before ${brief(f.before)} after ${brief(f.after)}`,
    );
    for (const snap of [f.afterSequential, f.after]) {
      // At most one: a single /dev/null fd appears in about half of the 10,000-sandbox runs (not
      // diagnosed yet, see the report in docs/security.md's known limits); any per-sandbox leak
      // adds hundreds here.
      const appeared = Object.entries(snap.fdTargets).filter(([fd, t]) => f.before.fdTargets[fd] !== t);
      expect(snap.fds, `fds that appeared: ${JSON.stringify(appeared)}`).toBeLessThanOrEqual(f.before.fds + 1);
      expect(snap.threads).toBe(f.before.threads);
      expect(snap.forkserverFds).toBe(f.before.forkserverFds);
      expect(snap.forkserverEntries).toBe(0); // no request, waiter or exit record kept per sandbox
      expect(snap.descendants).toBe(f.before.descendants); // the forkserver alone
      expect(snap.zombies).toBe(0);
      // Our own cgroups only (null: none can be made here). One may rarely outlive its sandbox:
      // SandboxCgroup.remove() gives up after ~100 ms of EBUSY (seen once in ~1,500 runs under load).
      if (f.before.cgroups !== null) expect(snap.cgroups!).toBeLessThanOrEqual(f.before.cgroups + 1);
    }
    expect(f.before.descendants).toBe(1);
    // Measured after a full GC (bench/soak.mjs switches --expose-gc on). Per sandbox, a retained
    // closed Comms (its 256 KiB read buffer) would add 250 MiB of ArrayBuffers here, and the
    // ~1.5 KiB of heap each that the forkserver's waiter set used to keep would add 1.5 MiB.
    expect(f.after.arrayBuffersMiB - f.before.arrayBuffersMiB).toBeLessThan(4);
    expect(f.after.heapMiB - f.before.heapMiB).toBeLessThan(1.2);
    // RSS settles after a few hundred runs (allocator arenas, JIT code).
    expect(f.after.rssMiB - f.before.rssMiB).toBeLessThan(40);
  }, 120_000);
});
