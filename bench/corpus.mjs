// The program corpus (test/corpus/programs.json) end to end: its total wall time under
// `sbx run`'s default (one CLI process per program: Node start, policy, forkserver, sandbox),
// under bubblewrap with a similar view (bwrap, no seccomp), and with no sandbox (a private /tmp
// only), each the same three programs at a time. Rounds interleave the modes; medians are kept.
// Only the programs that pass in every mode count, so each figure times the same work.
import { loadCorpus, runCorpus } from '../test/corpus/corpus.mjs';

const ROUNDS = 3;
const CONCURRENCY = 3;

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

export async function corpusBench() {
  const all = loadCorpus();
  // Which programs every mode runs correctly (bwrap and none lack sbx's generated identity).
  const probe = {};
  for (const mode of ['sbx', 'bwrap', 'none']) probe[mode] = (await runCorpus(all, mode, CONCURRENCY)).results;
  const entries = all.filter((_, i) => ['sbx', 'bwrap', 'none'].every((m) => probe[m][i].ok));
  const times = { sbx: [], bwrap: [], none: [] };
  for (let r = 0; r < ROUNDS; r++) {
    for (const mode of ['none', 'bwrap', 'sbx']) times[mode].push((await runCorpus(entries, mode, CONCURRENCY)).ms);
  }
  const sbx = median(times.sbx);
  const label = `corpus of ${entries.length} programs (of ${all.length}), ${CONCURRENCY} at a time, total wall time`;
  return [
    { name: `${label}: sbx run vs bwrap`, unit: 'ms', value: sbx, peer: 'bwrap (similar view, no seccomp)', peerValue: median(times.bwrap), goal: '<= 3×' },
    { name: `${label}: sbx run vs no sandbox`, unit: 'ms', value: sbx, peer: 'no sandbox (private /tmp)', peerValue: median(times.none), goal: '' },
  ];
}
