// policy.ts: `sbx policy check FILE` and `sbx policy explain FILE [--json]`: policy files
// (docs/policy-guide.md "Policy files", schema in packages/executor/policy.schema.json).
import { parseArgs } from 'node:util';
import { loadPolicyFile } from '../policy-file/policy-file.js';
import { compilePolicy } from '../policy/compiler.js';
import { disassemble } from '../policy/disassembler.js';
import { PolicyError } from '../policy/errors.js';
import type { Policy, SyscallRule } from '../policy/policy.js';
import { errnoName } from '../policy/syscalls.js';
import { ExitCode } from './exit-codes.js';
import { UsageError } from './run.js';

export const POLICY_HELP = `Usage: sbx policy check FILE
       sbx policy explain FILE [--json]

Policy files are JSON (schema: packages/executor/policy.schema.json; docs/policy-guide.md,
"Policy files"). check validates FILE and builds the policy: exit 0 and "ok: N syscall rules,
M mounts", or exit 2 listing every problem. explain prints the compiled seccomp program, one
instruction per line with syscall names, and what the policy allows; --json prints
{instructions, allowed, errno, conditional, default, mounts, network} instead.`;

function load(file: string): Policy | string[] {
  try {
    return loadPolicyFile(file).build();
  } catch (err) {
    if (err instanceof PolicyError) return err.problems;
    throw err;
  }
}

function ruleName(r: SyscallRule): string {
  return r.name ?? `#${r.nr}`;
}

export async function policy(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: { json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
    allowPositionals: true,
    strict: true,
  });
  if (values.help) {
    console.log(POLICY_HELP);
    return 0;
  }
  const [sub, file, ...extra] = positionals;
  if (sub !== 'check' && sub !== 'explain')
    throw new UsageError(
      sub === undefined ? 'expected check or explain' : `unknown subcommand "${sub}" (expected check or explain)`,
    );
  if (file === undefined) throw new UsageError(`sbx policy ${sub} needs a FILE`);
  if (extra.length) throw new UsageError(`unexpected argument "${extra[0]}"`);
  if (values.json && sub !== 'explain') throw new UsageError('--json goes with explain');

  const p = load(file);
  if (Array.isArray(p)) {
    console.error(
      `sbx policy ${sub}: ${p.length} problem${p.length === 1 ? '' : 's'}:\n${p.map((s) => `  - ${s}`).join('\n')}`,
    );
    return ExitCode.USAGE;
  }
  const rules = [...p.rules, ...p.overridable];
  const seen = new Set<number>();
  const effective = rules.filter((r) => {
    if (seen.has(r.nr)) return false;
    seen.add(r.nr);
    return true;
  });
  if (sub === 'check') {
    console.log(`ok: ${effective.length} syscall rules, ${p.mounts.length} mounts`);
    return 0;
  }

  const compiled = compilePolicy(p);
  const lines = disassemble(compiled.program, { arch: p.arch })
    .split('\n')
    .filter((l) => l.length > 0);
  const allowed = effective
    .filter((r) => r.kind === 'allow')
    .map(ruleName)
    .sort();
  const errno: Record<string, string> = {};
  for (const r of effective) if (r.kind === 'errno') errno[ruleName(r)] = errnoName(r.errno) ?? String(r.errno);
  const conditional = effective
    .filter((r) => r.kind === 'bpf')
    .map(ruleName)
    .sort();
  const def =
    typeof p.defaultAction === 'string'
      ? p.defaultAction
      : `errno ${errnoName(p.defaultAction.errno) ?? p.defaultAction.errno}`;
  if (values.json) {
    console.log(
      JSON.stringify(
        {
          instructions: lines.map((l) => l.trim()),
          allowed,
          errno,
          conditional,
          default: def,
          mounts: p.mounts,
          network: p.network,
        },
        null,
        2,
      ),
    );
    return 0;
  }
  const out: string[] = [];
  out.push(`# ${file}: ${compiled.length} instructions (${p.arch})`, ...lines, '');
  out.push(`allowed (${allowed.length}): ${allowed.join(' ') || '(none)'}`);
  if (Object.keys(errno).length)
    out.push(
      `errno (${Object.keys(errno).length}): ${Object.entries(errno)
        .map(([k, v]) => `${k}=${v}`)
        .join(' ')}`,
    );
  if (conditional.length) out.push(`allowed with argument checks (${conditional.length}): ${conditional.join(' ')}`);
  out.push(`every other syscall: ${def === 'kill' ? 'kill (a violation)' : def}`);
  out.push(`mounts (${p.mounts.length}):`);
  for (const m of p.mounts) {
    out.push(
      m.kind === 'tmpfs'
        ? `  ${m.inside}  tmpfs${m.sizeBytes ? ` ${m.sizeBytes} bytes` : ''}`
        : `  ${m.inside}  <- ${m.outside} (${m.kind}, ${m.writable ? 'rw' : 'ro'})`,
    );
  }
  const net = p.network;
  out.push(`network: ${net.mode === 'none' ? 'none' : net.mode === 'unrestricted' ? 'host (unrestricted)' : 'rules'}`);
  for (const r of net.rules)
    out.push(
      `  ${r.action ?? 'allow'} ${r.family === 6 ? `[${r.address}/${r.prefix}]` : `${r.address}/${r.prefix}`}${r.port ? `:${r.port}` : ''}`,
    );
  for (const u of net.unixSockets ?? []) out.push(`  unix ${u}`);
  console.log(out.join('\n'));
  return 0;
}
