// The program corpus (test/corpus/programs.json) end to end: its total wall time under
// `sbx run`'s default (one CLI process per program: Node start, policy, forkserver, sandbox),
// under bubblewrap with a similar view (bwrap, no seccomp), and with no sandbox (a private /tmp
// only), three programs at a time in each. Rounds interleave the modes; the fastest round of
// each counts (the least disturbed by other load). The label says how many programs each mode
// ran correctly: bwrap and no sandbox lack sbx's generated identity (id, whoami... differ there).
import { loadCorpus, runCorpus } from '../test/corpus/corpus.mjs';

const ROUNDS = Number(process.env.SBX_BENCH_CORPUS_ROUNDS ?? 2);
const CONCURRENCY = 3;

export async function corpusBench() {
  const entries = loadCorpus();
  const best = {};
  const passed = {};
  for (let r = 0; r < ROUNDS; r++) {
    for (const mode of ['none', 'bwrap', 'sbx']) {
      const { results, ms } = await runCorpus(entries, mode, CONCURRENCY);
      best[mode] = Math.min(best[mode] ?? Infinity, ms);
      passed[mode] = results.filter((x) => x.ok).length;
    }
  }
  const label = `corpus of ${entries.length} programs, ${CONCURRENCY} at a time, total wall time (correct: sbx ${passed.sbx}, bwrap ${passed.bwrap}, none ${passed.none})`;
  return [
    {
      name: `${label}: sbx run vs bwrap`,
      unit: 'ms',
      value: best.sbx,
      peer: 'bwrap (similar view, no seccomp)',
      peerValue: best.bwrap,
      goal: '',
    },
    {
      name: `${label}: sbx run vs no sandbox`,
      unit: 'ms',
      value: best.sbx,
      peer: 'no sandbox (private /tmp)',
      peerValue: best.none,
      goal: '',
    },
  ];
}
