// precompiled-policy.ts: the syscall half of `sbx run`'s default policy (allowCommandLine()),
// built and compiled when the package is built, not in every run. In a cold process building
// those ~320 rules, keying them and compiling them took ~20 ms of `sbx run -- /bin/true`; reading
// the result takes under 1 ms. Only the flag-free default uses it (no --allow, --errno, --net,
// --policy, namespaces isolation); the view half depends on the host and is built every run.
// scripts/precompile-default-policy.mjs writes the file; test/precompiled-policy.test.ts checks
// that it equals what the builder and the compiler make now.
import { readFileSync } from 'node:fs';
import { EXEC_FD_TARGET } from '../forkserver/protocol.js';
import { attachCompiled, type CompileStats, compilePolicy } from '../policy/compiler.js';
import { PolicyBuilder } from '../policy/policy-builder.js';
import { Policy } from '../policy/policy.js';

export const PRECOMPILED_FILE = 'default-policy.precompiled.json';
const FORMAT = 1;

/** The file's content. */
export interface PrecompiledDefault {
  format: typeof FORMAT;
  /** allowCommandLine() alone, as Policy.toJSON() writes it (no mounts, no network). */
  policy: unknown;
  /** Its program for each way `sbx run` compiles it (with and without the monitor). */
  programs: Array<{ monitor: boolean; execFd: number; base64: string; stats: Omit<CompileStats, 'millis'> }>;
}

/** What the build writes: allowCommandLine() built and compiled by this package's own code. */
export function makePrecompiledDefault(): PrecompiledDefault {
  const policy = new PolicyBuilder().allowCommandLine().build();
  const programs = [true, false].map((monitor) => {
    const c = compilePolicy(policy, { monitor, execFd: EXEC_FD_TARGET, cache: false });
    const { segments, depth, argLeaves } = c.stats;
    return {
      monitor,
      execFd: EXEC_FD_TARGET,
      base64: Buffer.from(c.program).toString('base64'),
      stats: { segments, depth, argLeaves },
    };
  });
  return { format: FORMAT, policy: policy.toJSON(), programs };
}

let loaded: { policy: Policy; programs: PrecompiledDefault['programs'] } | null | undefined;

/**
 * The precompiled half, or null when the file is missing, from another format or another
 * architecture, or unreadable: the caller then builds and compiles as usual.
 */
function precompiled(): typeof loaded {
  if (loaded !== undefined) return loaded;
  loaded = null;
  // dist/cli/*.js finds it beside itself; the CLI bundle (dist/cli-bundle.cjs) one directory up.
  for (const rel of [`./${PRECOMPILED_FILE}`, `./cli/${PRECOMPILED_FILE}`]) {
    let text: string;
    try {
      text = readFileSync(new URL(rel, import.meta.url), 'utf8');
    } catch {
      continue;
    }
    try {
      const doc = JSON.parse(text) as PrecompiledDefault;
      if (doc.format !== FORMAT || !Array.isArray(doc.programs)) return loaded;
      const policy = Policy.fromJSON(doc.policy);
      loaded = { policy, programs: doc.programs };
    } catch {
      // a damaged file: build as usual
    }
    return loaded;
  }
  return loaded;
}

/**
 * `view` (a policy with mounts, network and presets but no syscall rules) joined with the
 * precompiled allowCommandLine() rules, its programs attached; null when there is no precompiled
 * half or `view` has syscall rules of its own.
 */
export function withPrecompiledRules(view: Policy): Policy | null {
  const pre = precompiled();
  if (!pre) return null;
  if (view.rules.length || view.overridable.length || view.defaultAction !== pre.policy.defaultAction) return null;
  // The programs hold for this architecture and while the network part adds nothing to the filter.
  if (view.arch !== pre.policy.arch || view.network.mode !== 'none') return null;
  const joined = new Policy({
    arch: pre.policy.arch,
    rules: pre.policy.rules,
    overridable: pre.policy.overridable,
    defaultAction: pre.policy.defaultAction,
    mounts: view.mounts,
    network: view.network,
    presets: [...pre.policy.presets, ...view.presets],
  });
  for (const p of pre.programs)
    attachCompiled(
      joined,
      { monitor: p.monitor, execFd: p.execFd },
      new Uint8Array(Buffer.from(p.base64, 'base64')),
      p.stats,
    );
  return joined;
}
