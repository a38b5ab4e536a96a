// sbx learn and learnPolicy(): learn a policy from real runs, then prove it with an enforcing run
// (verify); the learned policy is tighter than sbx run's default; something new is a violation.
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  LearnError,
  LEARN_BASE_SET,
  PolicyBuilder,
  Sandbox,
  Executor,
  learnPolicy,
  learnPolicyFile,
  loadPolicyFile,
  verifyPolicyFile,
  type Policy,
  type PolicyFile,
} from '@sbx/executor';
import { defaultPolicy } from '../packages/executor/src/cli/default-policy.js';
import { encodeLearnTable } from '../packages/executor/src/learn/table.js';
import { openFdCount, repoRoot, testcase } from './helpers.js';

const sbxBin = join(repoRoot, 'packages', 'executor', 'bin', 'sbx.js');
function sbx(args: string[]) {
  const r = spawnSync(process.execPath, [sbxBin, ...args], { encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const dir = mkdtempSync(join(tmpdir(), 'sbx-learn-'));
// Readable by the sandboxee (host uid nobody when the tests run as root).
chmodSync(dir, 0o755);
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const write = (name: string, content: string | object): string => {
  const p = join(dir, name);
  writeFileSync(p, typeof content === 'string' ? content : JSON.stringify(content), { mode: 0o644 });
  return p;
};

/** Syscall numbers a policy allows in some form (wholly or with argument rules). */
function allowedCount(p: { rules: Policy['rules']; overridable: Policy['overridable'] }): number {
  const nrs = new Set<number>();
  for (const r of [...p.rules, ...p.overridable]) if (r.kind !== 'errno') nrs.add(r.nr);
  return nrs.size;
}

const quiet = { stdio: ['ignore', 'ignore', 'ignore'] as ['ignore', 'ignore', 'ignore'] };

describe('learnPolicy() and verify', () => {
  it('/bin/ls: the learned policy verifies and is smaller than the default preset', async () => {
    const opts = { path: '/bin/ls', argv: ['ls', '-la', '/usr'], ...quiet };
    await learnPolicyFile(opts); // the forkserver and the monitor thread start with the first sandbox
    const fdsBefore = openFdCount();
    const report = await learnPolicyFile(opts);
    expect(report.results.map((r) => r.status)).toEqual(['OK']);
    expect(report.facts.syscalls.length).toBeGreaterThan(5);
    // argument facts became argument rules: ls maps libraries and opens directories
    expect(report.doc.allowWhen?.mmap?.[0]?.arg2).toBeDefined();
    expect(report.doc.allowWhen?.openat?.[0]?.arg2).toHaveProperty('onlyFlags');
    const verified = await verifyPolicyFile(report.doc, opts);
    expect(verified.toString()).toMatch(/^OK, exit code 0/);

    expect(openFdCount()).toBeLessThanOrEqual(fdsBefore);
    const learned = (await learnPolicy(opts)).build();
    const dflt = defaultPolicy('/bin/ls', {
      allow: [],
      errno: [],
      mounts: [],
      tmpfs: [],
      network: { mode: 'none', allow: [], deny: [], dns: [], unix: [] },
    });
    expect(allowedCount(learned)).toBeLessThan(allowedCount(dflt));
    expect(allowedCount(learned)).toBeGreaterThanOrEqual(LEARN_BASE_SET.length);
  });

  it('the monitor bounds what one run may record: past the limit the sandbox is stopped', async () => {
    const b = new PolicyBuilder().allowSyscalls([...LEARN_BASE_SET]).defaultAction('notify');
    for (const d of ['/usr', '/lib', '/lib64', '/bin']) if (existsSync(d)) b.addDirectory(d);
    b.addFile('/etc/ld.so.cache');
    const sandbox = new Sandbox(new Executor('/bin/ls', ['ls', '/'], quiet), b.build());
    const events: string[] = [];
    sandbox.learning = {
      table: (filter) => encodeLearnTable(filter, 'x86_64', 3),
      onEvent: (e) => events.push(e.type),
    };
    const r = await sandbox.run();
    expect(events).toEqual(['learn', 'learn', 'learn', 'learn_limit']);
    expect(r.status).not.toBe('OK');
  });

  it('a Node script that reads a file and writes JSON; a socket afterwards is a violation', async () => {
    write('in.json', JSON.stringify({ a: 1, b: [2, 3] }));
    write(
      'script.js',
      `const fs = require('fs');
       const d = JSON.parse(fs.readFileSync('/data/in.json', 'utf8'));
       process.stdout.write(JSON.stringify({ keys: Object.keys(d) }) + '\\n');
       if (process.argv[2] === 'socket') require('net').connect(9, '127.0.0.1').on('error', () => {});`,
    );
    const { defaultView } = await import('../packages/executor/src/learn/view.js');
    const base = defaultView(process.execPath, { mounts: [{ outside: dir, inside: '/data', writable: false }] });
    const opts = { path: process.execPath, argv: ['node', '/data/script.js'], ...quiet, base: base as PolicyFile };
    const report = await learnPolicyFile(opts);
    expect(report.results[0]!.status).toBe('OK');
    expect(report.doc.allow).not.toContain('socket');
    expect(report.doc.allowWhen?.socket).toBeUndefined();
    expect((await verifyPolicyFile(report.doc, opts)).status).toBe('OK');

    // The same program doing something new under the learned (enforcing) policy.
    const policy = loadPolicyFile(report.doc).build();
    const r = await new Sandbox(
      new Executor(process.execPath, ['node', '/data/script.js', 'socket'], quiet),
      policy,
    ).run();
    expect(r.status).toBe('VIOLATION');
    expect(r.violation?.syscall).toBe('socket');
  });

  it('under network rules the monitor decides connects while learning; the learned policy keeps the rules', async () => {
    const server = createServer((s) => s.once('data', () => s.end('pong'))).listen(0, '127.0.0.1');
    await once(server, 'listening');
    const port = (server.address() as { port: number }).port;
    let connections = 0;
    server.on('connection', () => connections++);
    try {
      const { defaultView } = await import('../packages/executor/src/learn/view.js');
      const base = defaultView(testcase('net_client'), {
        network: { mode: 'rules', allow: [['127.0.0.1', port]], deny: [], dns: [], unix: [] },
      });
      const opts = {
        path: testcase('net_client'),
        argv: ['net_client', 'tcp', '127.0.0.1', String(port)],
        ...quiet,
        base: base as PolicyFile,
      };
      const report = await learnPolicyFile(opts);
      expect(report.results[0]!.toString()).toMatch(/^OK, exit code 0/);
      expect(report.doc.network).toEqual({ mode: 'rules', allow: [`127.0.0.1:${port}`] });
      expect(report.doc.allow).toContain('connect');
      expect(report.doc.allowWhen?.socket).toEqual([{ arg0: [2], arg1: [0x80001] }]); // AF_INET, SOCK_STREAM | SOCK_CLOEXEC
      expect((await verifyPolicyFile(report.doc, opts)).toString()).toMatch(/^OK, exit code 0/);
      expect(connections).toBe(2); // the learning run's connect reached the server through the monitor too
    } finally {
      server.close();
    }
  });

  it('learning keeps the always-on denials: a new user namespace ends the run as a violation', async () => {
    const err = await learnPolicyFile({
      path: '/usr/bin/unshare',
      argv: ['unshare', '--user', '/bin/true'],
      ...quiet,
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LearnError);
    expect((err as LearnError).code).toBe('RUN_FAILED');
    expect((err as LearnError).result?.status).toBe('VIOLATION');
    expect((err as LearnError).message).toMatch(/unshare.*always denies/);
  });

  it('learnPolicy() rejects bad options with a clear error', async () => {
    await expect(learnPolicyFile({ path: '/bin/true', runs: 0 })).rejects.toThrow(/runs must be an integer 1\.\.1000/);
    await expect(learnPolicyFile({ path: '/bin/true', enableSandboxBeforeExec: false })).rejects.toThrow(
      /sandbox-before-exec/,
    );
    await expect(learnPolicyFile({ path: '/bin/true', base: { allow: ['wirte'] } })).rejects.toThrow(
      /unknown syscall "wirte"/,
    );
    await expect(learnPolicyFile({ path: '/bin/true', monitor: 'kill', ...quiet })).rejects.toThrow(
      /learning needs the seccomp monitor/,
    );
  });
});

describe('sbx learn', () => {
  it('a static C program: learn --verify writes a policy that holds', () => {
    const out = join(dir, 'static.json');
    const r = sbx(['learn', '-o', out, '--verify', '--', testcase('static_hello')]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('hello'); // the program's stdout passes through with -o
    expect(r.stderr).toMatch(/verify: OK/);
    const doc = JSON.parse(readFileSync(out, 'utf8')) as PolicyFile;
    expect(doc.allow).toContain('write');
    // a static binary never opens a file or makes a socket
    expect(doc.allowWhen?.openat).toBeUndefined();
    expect(sbx(['run', '--policy', out, '--', testcase('static_hello')]).code).toBe(0);
  });

  it('a shell pipeline (bash -c), two runs merged, policy on stdout, then verified', () => {
    // bash: dash catches SIGCHLD without SA_RESTART, so a notified fork that an earlier child's
    // exit interrupts before the monitor reads it fails with EINTR ("Cannot fork") while learning
    // (docs/policy-guide.md, "How learning works"): a kernel rule, not something learn can stop.
    const script = 'echo hello | tr a-z A-Z; ls / | wc -l >/dev/null';
    const r = sbx(['learn', '--runs', '2', '--', '/bin/bash', '-c', script]);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/run 1\/2: OK/);
    expect(r.stderr).toMatch(/run 2\/2: OK/);
    expect(r.stderr).toContain('HELLO'); // the program's stdout goes to stderr: stdout is the policy
    const doc = JSON.parse(r.stdout) as PolicyFile;
    // the shell forks its pipeline: clone with the flags it used
    expect(doc.allowWhen?.clone?.[0]?.arg0).toBeDefined();
    const p = write('pipeline.json', doc);
    const v = sbx(['run', '--policy', p, '--', '/bin/bash', '-c', script]);
    expect(v).toMatchObject({ code: 0, stdout: 'HELLO\n' });
  });

  it('--merge extends a policy: the result runs both programs', () => {
    const a = join(dir, 'true.json');
    expect(sbx(['learn', '-o', a, '--', '/bin/true']).code).toBe(0);
    const b = join(dir, 'true+ls.json');
    const r = sbx(['learn', '--merge', a, '-o', b, '--verify', '--', '/bin/ls', '/']);
    expect(r.code).toBe(0);
    const docA = JSON.parse(readFileSync(a, 'utf8')) as PolicyFile;
    const docB = JSON.parse(readFileSync(b, 'utf8')) as PolicyFile;
    for (const n of docA.allow ?? []) expect(docB.allow).toContain(n);
    expect(docB.allow!.length + Object.keys(docB.allowWhen ?? {}).length).toBeGreaterThan(
      docA.allow!.length + Object.keys(docA.allowWhen ?? {}).length,
    );
    expect(sbx(['run', '--policy', b, '--', '/bin/true']).code).toBe(0);
    expect(sbx(['run', '--policy', b, '--', '/bin/ls', '/']).code).toBe(0);
    // a program that needs more than the file gives is still a violation under it
    expect(sbx(['run', '--policy', a, '--', '/bin/ls', '/']).code).toBe(159);
  });

  it('policy explain names every syscall a learned policy allows', () => {
    const out = join(dir, 'ls.json');
    expect(sbx(['learn', '-o', out, '--', '/bin/ls', '/']).code).toBe(0);
    const doc = JSON.parse(readFileSync(out, 'utf8')) as PolicyFile;
    const e = sbx(['policy', 'explain', out]);
    expect(e.code).toBe(0);
    const allowedLine = e.stdout.split('\n').find((l) => l.startsWith('allowed ('))!;
    const conditionalLine = e.stdout.split('\n').find((l) => l.startsWith('allowed with argument checks'))!;
    for (const n of doc.allow ?? []) expect(allowedLine.split(' ')).toContain(n);
    for (const n of Object.keys(doc.allowWhen ?? {})) expect(conditionalLine.split(' ')).toContain(n);
    const presetNames = { exit: ['exit', 'exit_group'], futex: ['futex'] } as Record<string, string[]>;
    for (const p of doc.presets ?? [])
      for (const n of presetNames[p] ?? []) expect(allowedLine.split(' ')).toContain(n);
  });

  it('bad usage exits 2 and says what is wrong', () => {
    expect(sbx(['learn'])).toMatchObject({ code: 2 });
    expect(sbx(['learn', '--runs', 'x', '--', '/bin/true']).stderr).toMatch(/--runs expects a non-negative integer/);
    expect(sbx(['learn', '--runs', '0', '--', '/bin/true']).stderr).toMatch(/--runs must be 1\.\.1000/);
    expect(sbx(['learn', '--merge', join(dir, 'missing.json'), '--', '/bin/true'])).toMatchObject({ code: 2 });
    expect(sbx(['learn', '--merge', join(dir, 'static.json'), '--mount', '/usr', '--', '/bin/true']).stderr).toMatch(
      /do not go with --merge/,
    );
    expect(sbx(['learn', '--bogus', '--', '/bin/true']).code).toBe(2);
    expect(sbx(['learn', '--help']).stdout).toMatch(/Usage: sbx learn/);
  });
});

describe('sbx policy check: each kind of bad file', () => {
  const cases: Array<[string, object, RegExp]> = [
    ['unknown syscall', { allow: ['read', 'opne'] }, /unknown syscall "opne" on x86_64 \(did you mean open/],
    ['bad CIDR', { network: { mode: 'rules', allow: ['10.0.0.0/33'] } }, /10\.0\.0\.0\/33/],
    ['bad errno name', { errno: { uname: 'EPERMM' } }, /unknown errno name "EPERMM" \(did you mean EPERM/],
    ['unknown key', { allow: ['read'], preset: ['exit'] }, /unknown key "preset" at \//],
    [
      'unknown key in allowWhen',
      { allowWhen: { ioctl: [{ arg1: [1], argX: [2] }] } },
      /unknown key "argX" at \/allowWhen\/ioctl\/0/,
    ],
    [
      'bad argument value',
      { allowWhen: { ioctl: [{ arg1: ['TCGETS'] }] } },
      /\/allowWhen\/ioctl\/0\/arg1\/0: must match pattern/,
    ],
    ['unknown syscall in allowWhen', { allowWhen: { iocl: [{ arg1: [1] }] } }, /unknown syscall "iocl"/],
    ['always-denied syscall in allowWhen', { allowWhen: { ptrace: [{ arg0: [0] }] } }, /ptrace: it is always denied/],
  ];
  for (const [what, content, message] of cases) {
    it(what, () => {
      const p = write(`bad-${what.replace(/ /g, '-')}.json`, content);
      const r = sbx(['policy', 'check', p]);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/1 problem:/);
      expect(r.stderr).toMatch(message);
    });
  }
});

describe("the monitor's filter interpreter (native learn.cc)", () => {
  it('returns what the TS evaluator returns for every syscall number and argument patterns', async () => {
    const { native } = await import('@sbx/client/internal');
    const { evaluate, compilePolicy } = await import('@sbx/executor/bpf');
    const { syscallName } = await import('@sbx/executor');
    const b = loadPolicyFile({
      allowWhen: {
        ioctl: [{ arg1: ['0x5401'] }],
        socket: [{ arg0: [1], arg1: [1] }],
        openat: [{ arg2: { onlyFlags: '0x80000' } }],
      },
      errno: { uname: 'EPERM' },
    });
    const policy = b
      .allowSyscalls([...LEARN_BASE_SET])
      .defaultAction('notify')
      .build();
    const program = compilePolicy(policy, { monitor: true }).program;
    const table = encodeLearnTable(program, 'x86_64');
    const argSets: bigint[][] = [
      [0n, 0n, 0n, 0n, 0n, 0n],
      [1n, 0x5401n, 0x80000n, 0n, 0n, 0n],
      [0x7e020000n, 0x5412n, 0x1n, 7n, 8n, 9n], // CLONE_NEW* flags, TIOCSTI, O_WRONLY
      [0xffffffffffffffffn, 0xffffffff00005401n, 0x80040n, 0n, 0n, 0n],
    ];
    let checked = 0;
    for (const arch of [0xc000003e, 0x40000003]) {
      for (let nr = 0; nr < 470; nr++) {
        for (const args of argSets) {
          const raw = Buffer.alloc(64);
          raw.writeInt32LE(nr, 0);
          raw.writeUInt32LE(arch, 4);
          raw.writeBigUInt64LE(0x401000n, 8);
          args.forEach((a, i) => {
            raw.writeBigUInt64LE(a, 16 + 8 * i);
          });
          const got = native().learnRun(table, raw);
          const want = evaluate(program, { nr, arch, ip: 0x401000n, args }).ret;
          expect(got.ret >>> 0, `${syscallName('x86_64', nr)} ${args}`).toBe(want);
          checked++;
        }
      }
    }
    expect(checked).toBe(2 * 470 * argSets.length);
    // the recorded fact: ioctl keeps the low 32 bits of its command only
    const raw = Buffer.alloc(64);
    raw.writeInt32LE(16, 0);
    raw.writeUInt32LE(0xc000003e, 4);
    raw.writeBigUInt64LE(3n, 16);
    raw.writeBigUInt64LE(0xffffffff00005401n, 24);
    expect(native().learnRun(table, raw).fact).toEqual([16, 0, 0x5401, 0, 0, 0, 0]);
    expect(() => native().learnRun(Buffer.alloc(8), raw)).toThrow(/learn table: shorter/);
  });
});
