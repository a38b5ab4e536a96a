// synthesize.ts: learned facts -> a policy file (the format of policy-file.ts) that allows what
// was seen: whole syscalls where no argument fact narrows them, "allowWhen" argument rules where
// one does, presets where every syscall of a preset was allowed anyway; merged into a base file.
import { P_LISTS } from './presets-fit.js';
import { hex, parseArgValue } from '../policy/arg-rules.js';
import type { ArgAlternative, ArgIndex, ArgTest, ArgValue } from '../policy/arg-rules.js';
import { syscallName, syscallNumber } from '../policy/syscalls.js';
import type { PolicyFile, PolicyFilePreset } from '../policy-file/policy-file.js';
import { ARG_FACTS, BASE_SET, NETWORK_DECIDED } from './facts.js';
import type { LearnedFacts } from './facts-set.js';

/** Arguments written in hex (bit sets and ioctl commands); the others are small enumerations. */
const HEX_ARGS: Readonly<Record<string, number>> = { ioctl: 1, clone: 0 };

export interface Synthesized {
  readonly doc: PolicyFile;
  /** Facts that cannot be written (a syscall number with no name in sbx's table). */
  readonly problems: string[];
}

function alternativesOf(name: string, tuples: number[][]): ArgAlternative[] {
  const spec = ARG_FACTS[name]!;
  const key = (i: number): ArgIndex => `arg${i}` as ArgIndex;
  const fmt = (argIndex: number, v: number): ArgValue => (HEX_ARGS[name] === argIndex ? hex(v) : v);
  if (spec.form === 'flags') {
    const i = spec.args[0]!;
    const union = tuples.reduce((m, t) => (m | t[0]!) >>> 0, 0);
    return [{ [key(i)]: { onlyFlags: hex(union) } }];
  }
  if (spec.args.length === 1) {
    const i = spec.args[0]!;
    const values = [...new Set(tuples.map((t) => t[0]!))].sort((a, b) => a - b);
    return [{ [key(i)]: values.map((v) => fmt(i, v)) }];
  }
  // Two arguments (socket family and type): one alternative per first value.
  const [i, j] = spec.args as [number, number];
  const byFirst = new Map<number, Set<number>>();
  for (const t of tuples) {
    let s = byFirst.get(t[0]!);
    if (!s) byFirst.set(t[0]!, (s = new Set()));
    s.add(t[1]!);
  }
  return [...byFirst.keys()]
    .sort((a, b) => a - b)
    .map((first) => ({
      [key(i)]: [fmt(i, first)],
      [key(j)]: [...byFirst.get(first)!].sort((a, b) => a - b).map((v) => fmt(j, v)),
    }));
}

function sameTest(a: ArgTest, b: ArgTest): boolean {
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) {
    const x = a.map(parseArgValue).sort();
    const y = (b as ArgValue[]).map(parseArgValue).sort();
    return x.length === y.length && x.every((v, i) => v === y[i]);
  }
  return parseArgValue(a.onlyFlags) === parseArgValue((b as { onlyFlags: ArgValue }).onlyFlags);
}

/** Union of two tests of one argument, or undefined when one is a list and the other flags. */
function unionTest(a: ArgTest, b: ArgTest): ArgTest | undefined {
  if (Array.isArray(a) && Array.isArray(b)) {
    const asHex = a.some((v) => typeof v === 'string');
    const all = [...new Set([...a, ...b].map((v) => parseArgValue(v)!))].sort((x, y) => x - y);
    return all.map((v) => (asHex ? hex(v) : v));
  }
  if (!Array.isArray(a) && !Array.isArray(b))
    return { onlyFlags: hex((parseArgValue(a.onlyFlags)! | parseArgValue(b.onlyFlags)!) >>> 0) };
  return undefined;
}

/**
 * Adds alternatives to a list: one that differs from an existing alternative in a single
 * argument widens that argument's values; an equal one is dropped; any other is appended.
 */
export function mergeAlternatives(into: readonly ArgAlternative[], more: readonly ArgAlternative[]): ArgAlternative[] {
  const out = into.map((a) => ({ ...a }));
  for (const alt of more) {
    const keys = Object.keys(alt).sort() as ArgIndex[];
    let done = false;
    for (let n = 0; n < out.length && !done; n++) {
      const cur = out[n]!;
      const curKeys = Object.keys(cur).sort();
      if (curKeys.join() !== keys.join()) continue;
      const differ = keys.filter((k) => !sameTest(cur[k]!, alt[k]!));
      if (differ.length === 0) done = true;
      else if (differ.length === 1) {
        const u = unionTest(cur[differ[0]!]!, alt[differ[0]!]!);
        if (u) {
          out[n] = { ...cur, [differ[0]!]: u };
          done = true;
        }
      }
    }
    if (!done) out.push({ ...alt });
  }
  return out;
}

/** The policy file that allows what `facts` saw, added to `base` (its view, rules and default). */
export function synthesize(facts: LearnedFacts, base: PolicyFile = {}): Synthesized {
  const arch = facts.arch;
  const problems: string[] = [];
  const allow = new Set<string>(base.allow ?? []);
  const allowWhen: Record<string, ArgAlternative[]> = { ...(base.allowWhen ?? {}) };
  for (const n of BASE_SET) if (syscallNumber(arch, n) !== undefined) allow.add(n);
  if (base.network?.mode === 'rules') for (const n of NETWORK_DECIDED) allow.add(n);
  for (const nr of facts.syscalls) {
    const name = syscallName(arch, nr);
    if (!name) {
      problems.push(`syscall number ${nr} has no name in sbx's ${arch} table; it is not in the policy`);
      continue;
    }
    if (ARG_FACTS[name])
      allowWhen[name] = mergeAlternatives(allowWhen[name] ?? [], alternativesOf(name, facts.valuesOf(nr)));
    else allow.add(name);
  }
  // Presets every one of whose syscalls is allowed anyway replace those names.
  const presets = new Set<PolicyFilePreset>(base.presets ?? []);
  for (const [preset, names] of Object.entries(P_LISTS) as Array<[PolicyFilePreset, readonly string[]]>) {
    const present = names.filter((n) => syscallNumber(arch, n) !== undefined);
    if (present.length && present.every((n) => allow.has(n))) presets.add(preset);
  }
  for (const p of presets) for (const n of P_LISTS[p] ?? []) allow.delete(n);

  const doc: PolicyFile = {};
  if (base.$schema) doc.$schema = base.$schema;
  if (presets.size) doc.presets = [...presets];
  doc.allow = [...allow].sort();
  if (Object.keys(allowWhen).length)
    doc.allowWhen = Object.fromEntries(Object.entries(allowWhen).sort(([a], [b]) => (a < b ? -1 : 1)));
  for (const k of ['errno', 'default', 'view', 'files', 'directories', 'tmpfs', 'librariesFor', 'network'] as const) {
    if (base[k] !== undefined) (doc as Record<string, unknown>)[k] = base[k];
  }
  return { doc, problems };
}
