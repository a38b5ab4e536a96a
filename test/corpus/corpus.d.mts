// Types for corpus.mjs (plain JS so bench/ can use it without a build).
export const sbxBin: string;
/** The entries of programs.json. */
export function loadCorpus(): Array<{ name: string; argv: string[]; [key: string]: unknown }>;
/** [file, args] to run one entry in a mode: 'sbx', 'bwrap' or 'none'. */
export function commandFor(entry: unknown, mode: 'sbx' | 'bwrap' | 'none'): [string, string[]];
export interface CorpusOutcome {
  entry: { name: string; argv: string[] };
  code: number | string;
  stdout: string;
  stderr: string;
  ms: number;
  ok: boolean;
  why: string;
}
export function runEntry(
  entry: unknown,
  mode?: 'sbx' | 'bwrap' | 'none',
  options?: { timeoutMs?: number },
): Promise<CorpusOutcome>;
export function runCorpus(
  entries: unknown[],
  mode?: 'sbx' | 'bwrap' | 'none',
  concurrency?: number,
): Promise<{ results: CorpusOutcome[]; ms: number }>;
