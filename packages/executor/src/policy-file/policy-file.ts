// policy-file.ts: sbx policy files, a JSON form of the PolicyBuilder vocabulary for people and
// the CLI (`sbx policy check|explain FILE`, `sbx run --policy FILE`). Not Policy.toJSON()'s dump:
// that one is the built data; this one is what a person writes. Schema: policy.schema.json.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { Ajv as AjvClass, ErrorObject } from 'ajv';
import { PolicyBuilder } from '../policy/policy-builder.js';
import type { PolicyBuilderOptions } from '../policy/policy-builder.js';
import type { StandardViewOptions } from '../view/standard-view.js';
import { PolicyError } from '../policy/errors.js';
import { splitCidrPort } from '../policy/network.js';
import { argRule } from '../policy/arg-rules.js';
import type { ArgAlternative } from '../policy/arg-rules.js';
import { POLICY_FILE_SCHEMA, PRESET_NAMES } from './schema.js';

export { POLICY_FILE_SCHEMA, PRESET_NAMES };

export type PolicyFilePreset = (typeof PRESET_NAMES)[number];
export type PolicyFileErrno = string | number;
export interface PolicyFileBind {
  path: string;
  inside?: string;
  writable?: boolean;
}
/** What a policy file holds (after validation). */
export interface PolicyFile {
  $schema?: string;
  presets?: PolicyFilePreset[];
  allow?: string[];
  /** Syscalls allowed when their arguments match (policy/arg-rules.ts). */
  allowWhen?: Record<string, ArgAlternative[]>;
  /** Syscalls sent to the notify handler: [] every call, else only calls matching an alternative. */
  notify?: Record<string, ArgAlternative[]>;
  errno?: Record<string, PolicyFileErrno>;
  default?: 'kill' | 'allow' | 'log' | { errno: PolicyFileErrno };
  /** 'standard': PolicyBuilder.addStandardView() (a tmpfs /tmp unless `tmpfs` lists one). */
  view?: 'standard';
  files?: PolicyFileBind[];
  directories?: PolicyFileBind[];
  tmpfs?: Array<{ path: string; size?: string | number }>;
  librariesFor?: string[];
  network?: { mode: 'none' | 'host' | 'rules'; allow?: string[]; deny?: string[]; dns?: string[]; unix?: string[] };
}

export interface LoadPolicyFileOptions extends PolicyBuilderOptions {
  /** Apply the file to this builder (after what it already holds) instead of a new one. */
  readonly builder?: PolicyBuilder;
}

let validator: ReturnType<AjvClass['compile']> | undefined;
function validate(doc: unknown): readonly ErrorObject[] {
  if (!validator) {
    // Loaded on first use: ajv is ~35 ms of start-up that only policy files need.
    const { Ajv } = createRequire(import.meta.url)('ajv') as typeof import('ajv');
    validator = new Ajv({ allErrors: true, strict: true, strictTypes: false, allowUnionTypes: true }).compile(
      POLICY_FILE_SCHEMA,
    );
  }
  return validator(doc) ? [] : (validator.errors ?? []);
}

function formatError(e: ErrorObject): string | undefined {
  const at = e.instancePath || '/';
  switch (e.keyword) {
    case 'if':
      return undefined; // always accompanied by the error of the branch that failed
    case 'additionalProperties':
      return `unknown key ${JSON.stringify((e.params as { additionalProperty: string }).additionalProperty)} at ${at}`;
    case 'enum':
      return `${at}: must be one of ${(e.params as { allowedValues: unknown[] }).allowedValues.map((v) => JSON.stringify(v)).join(', ')}`;
    default:
      return `${at}: ${e.message ?? 'is invalid'}`;
  }
}

/**
 * Reads (a path) or takes (an object) a policy file and checks it against the schema. Throws
 * PolicyError('INVALID_POLICY') listing every problem, each prefixed with the file's path.
 */
export function readPolicyFile(source: string | object): { doc: PolicyFile; prefix: string } {
  const prefix = typeof source === 'string' ? `${source}: ` : '';
  let doc: unknown = source;
  if (typeof source === 'string') {
    let text: string;
    try {
      text = readFileSync(source, 'utf8');
    } catch (e) {
      throw new PolicyError(
        'INVALID_POLICY',
        `${prefix}cannot read the file (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`,
      );
    }
    try {
      doc = JSON.parse(text);
    } catch (e) {
      throw new PolicyError('INVALID_POLICY', `${prefix}not valid JSON (${(e as Error).message})`);
    }
  } else if (source === null || typeof source !== 'object') {
    throw new TypeError('loadPolicyFile(source): source must be a path or an object');
  }
  const problems = [
    ...new Set(
      validate(doc)
        .map(formatError)
        .filter((m): m is string => m !== undefined),
    ),
  ];
  if (problems.length)
    throw new PolicyError(
      'INVALID_POLICY',
      problems.map((p) => prefix + p),
    );
  return { doc: doc as PolicyFile, prefix };
}

const PRESETS: Record<PolicyFilePreset, (b: PolicyBuilder) => unknown> = {
  'dynamic-startup': (b) => b.allowDynamicStartup(),
  'static-startup': (b) => b.allowStaticStartup(),
  'system-malloc': (b) => b.allowSystemMalloc(),
  read: (b) => b.allowRead(),
  write: (b) => b.allowWrite(),
  open: (b) => b.allowOpen(),
  stat: (b) => b.allowStat(),
  access: (b) => b.allowAccess(),
  exit: (b) => b.allowExit(),
  time: (b) => b.allowTime(),
  sleep: (b) => b.allowSleep(),
  'get-ids': (b) => b.allowGetIds(),
  'get-pids': (b) => b.allowGetPids(),
  futex: (b) => b.allowFutex(),
  mmap: (b) => b.allowMmap(),
  'safe-fcntl': (b) => b.allowSafeFcntl(),
  'node-runtime': (b) => b.allowNodeRuntime(),
  'network-client': (b) => b.allowNetworkClient(),
  'command-line': (b) => b.allowCommandLine(),
};

const SIZE_UNITS: Record<string, number> = { '': 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40 };

/** "10.0.0.0/8", "10.0.0.0/8:443", "::1", "[2001:db8::/32]:443" -> [cidr, port], or a problem. */
function parseCidrPort(v: string): [string, number] | string {
  const [cidr, port] = splitCidrPort(v);
  if (port && (!/^\d{1,5}$/.test(port) || Number(port) > 65535)) return `the port of "${v}" must be 0..65535`;
  return [cidr, port ? Number(port) : 0];
}

/**
 * Applies a validated policy file to a builder; the problems it adds are prefixed. `view` adds
 * options to a `view: "standard"` (isolation, hostname, resolvConf).
 */
export function applyPolicyFile(
  doc: PolicyFile,
  b: PolicyBuilder,
  prefix = '',
  view: StandardViewOptions = {},
): string[] {
  const before = b.problems.length;
  const own: string[] = [];
  // Notify hooks before anything that could decide the same syscall (the first rule wins).
  for (const [name, alternatives] of Object.entries(doc.notify ?? {}))
    b.notifySyscall(name, alternatives.length ? alternatives : undefined);
  // The file's own rules first: the first rule on a syscall wins, so an errno beats a preset.
  for (const [name, e] of Object.entries(doc.errno ?? {})) b.blockSyscallWithErrno(name, e);
  for (const name of doc.allow ?? []) b.allowSyscall(name);
  for (const [name, alternatives] of Object.entries(doc.allowWhen ?? {})) {
    const r = argRule(alternatives, `allowWhen.${name}`);
    if ('problems' in r) own.push(...r.problems);
    else b.addPolicyOnSyscall(name, r.rule);
  }
  for (const p of doc.presets ?? []) PRESETS[p](b);
  if (doc.default !== undefined) b.defaultAction(doc.default);
  if (doc.view === 'standard')
    b.addStandardView({
      ...view,
      ...((doc.tmpfs ?? []).some((t) => t.path === '/tmp') ? { tmp: false as const } : {}),
    });
  for (const f of doc.files ?? []) {
    if (f.inside === undefined) b.addFile(f.path, { writable: f.writable ?? false });
    else b.addFileAt(f.path, f.inside, { writable: f.writable ?? false });
  }
  for (const d of doc.directories ?? []) {
    if (d.inside === undefined) b.addDirectory(d.path, { writable: d.writable ?? false });
    else b.addDirectoryAt(d.path, d.inside, { writable: d.writable ?? false });
  }
  for (const t of doc.tmpfs ?? []) {
    let sizeBytes = 0;
    if (typeof t.size === 'number') sizeBytes = t.size;
    else if (typeof t.size === 'string') {
      const m = /^(\d+)([kKmMgGtT]?)$/.exec(t.size)!;
      sizeBytes = Number(m[1]) * SIZE_UNITS[m[2]!.toLowerCase()]!;
    }
    if (!Number.isSafeInteger(sizeBytes)) own.push(`tmpfs "${t.path}": size ${t.size} is too large`);
    else b.addTmpfs(t.path, { sizeBytes });
  }
  for (const bin of doc.librariesFor ?? []) b.addLibrariesForBinary(bin);
  const net = doc.network;
  if (net) {
    const rules = (net.allow?.length ?? 0) + (net.deny?.length ?? 0) + (net.dns?.length ?? 0) + (net.unix?.length ?? 0);
    if (net.mode !== 'rules' && rules > 0)
      own.push(`network: mode "${net.mode}" takes no allow/deny/dns/unix lists (use mode "rules")`);
    else if (net.mode === 'rules' && rules === 0)
      own.push('network: mode "rules" needs at least one allow, dns or unix entry');
    if (net.mode === 'host') b.allowUnrestrictedNetworking();
    for (const [list, deny] of [
      [net.allow ?? [], false],
      [net.deny ?? [], true],
    ] as const) {
      for (const v of list) {
        const r = parseCidrPort(v);
        if (typeof r === 'string') {
          own.push(`network: ${r}`);
          continue;
        }
        const [cidr, port] = r;
        const v6 = cidr.includes(':');
        if (deny) v6 ? b.denyIPv6(cidr, port) : b.denyIPv4(cidr, port);
        else v6 ? b.allowIPv6(cidr, port) : b.allowIPv4(cidr, port);
      }
    }
    if (net.dns?.length) b.allowDns(net.dns);
    for (const p of net.unix ?? []) b.allowUnixSocket(p);
  }
  return [...b.problems.slice(before), ...own].map((p) => prefix + p);
}

/**
 * Loads a policy file (a path, or the parsed object) into a PolicyBuilder: validated against
 * policy.schema.json, then applied with the builder's methods. Throws PolicyError('INVALID_POLICY')
 * listing every problem (schema errors such as "/allow/3: must be string", then the builder's:
 * unknown syscalls, errnos, bad paths and CIDRs), each prefixed with the file's path. The builder
 * is returned unbuilt, so more can be added before build().
 */
export function loadPolicyFile(source: string | object, options: LoadPolicyFileOptions = {}): PolicyBuilder {
  const { doc, prefix } = readPolicyFile(source);
  const b = options.builder ?? new PolicyBuilder(options.arch ? { arch: options.arch } : {});
  const problems = applyPolicyFile(doc, b, prefix);
  if (problems.length) throw new PolicyError('INVALID_POLICY', problems);
  return b;
}
