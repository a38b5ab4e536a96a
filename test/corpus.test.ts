// The program corpus (test/corpus/programs.json): real programs from Debian packages, each run
// under `sbx run`'s default policy with no extra flags, must print what it prints outside a
// sandbox. A failure names the program, what differed and sbx's last words (the violating
// syscall for a VIOLATION).
import { beforeAll, describe, expect, it } from 'vitest';
import { loadCorpus, runCorpus } from './corpus/corpus.mjs';

interface Entry {
  name: string;
  argv: string[];
}
interface Outcome {
  entry: Entry;
  ok: boolean;
  why: string;
  stderr: string;
  code: number | string;
}

const corpus: Entry[] = loadCorpus();
let outcomes = new Map<string, Outcome>();

describe('the program corpus under sbx run', () => {
  beforeAll(async () => {
    const { results } = (await runCorpus(corpus, 'sbx', 3)) as { results: Outcome[] };
    outcomes = new Map(results.map((r) => [r.entry.name, r]));
  }, 600_000);

  it('holds at least 80 distinct programs', () => {
    expect(new Set(corpus.map((e) => e.name)).size).toBe(corpus.length);
    expect(corpus.length).toBeGreaterThanOrEqual(80);
  });

  it.each(corpus.map((e) => [e.name, e] as const))('%s', (name) => {
    const r = outcomes.get(name)!;
    const sbxSaid = r.stderr
      .split('\n')
      .filter((l) => l.startsWith('sbx'))
      .join('\n');
    expect(r.ok, `${name}: ${r.why}${sbxSaid ? `\n${sbxSaid}` : `\nstderr: ${r.stderr.slice(-500)}`}`).toBe(true);
  });
});
