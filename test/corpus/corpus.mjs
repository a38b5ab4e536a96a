// corpus.mjs: runs the program corpus (programs.json) under `sbx run`'s default policy, under
// bubblewrap with a similar view, or with no sandbox (a private /tmp only). Shared by
// test/corpus.test.ts (sbx: every program must pass) and bench/corpus.mjs (wall time of all three).
import { spawn } from 'node:child_process';
import { existsSync, lstatSync, readFileSync, readlinkSync, realpathSync } from 'node:fs';
import { dirname, join } from 'node:path';

const here = import.meta.dirname;
export const sbxBin = join(here, '..', '..', 'packages', 'executor', 'bin', 'sbx.js');
const CHECK_MARK = '\n@@corpus-check@@\n';
const SANDBOX_PATH = '/usr/local/bin:/usr/bin:/bin';

/** The corpus entries: { name, argv, stdin?, setup?, stdout? | stdoutMatch?, check?, checkStdout? }. */
export function loadCorpus() {
  return JSON.parse(readFileSync(join(here, 'programs.json'), 'utf8')).programs;
}

/** The program's argv, wrapped in /bin/sh when the entry has a setup or a check script. */
function programArgv(e) {
  if (!e.setup && !e.check) return e.argv;
  const script = `${e.setup ? `{ ${e.setup}\n} </dev/null >/dev/null\n` : ''}"$@"; rc=$?\n${e.check ? `printf '${CHECK_MARK.replace(/\n/g, '\\n')}'\n${e.check}\n` : ''}exit $rc`;
  return ['/bin/sh', '-c', script, 'corpus', ...e.argv];
}

/** Where `node` is: the running Node, which must be visible inside (a system directory, or bound). */
function nodeMount() {
  const dir = dirname(realpathSync(process.execPath));
  const bound = ['/usr/', '/bin/', '/sbin/', '/lib/'].some((d) => `${dir}/`.startsWith(d));
  return bound ? null : dir;
}

/** [file, args, env] for one entry in a mode: 'sbx', 'bwrap' or 'none'. */
export function commandFor(e, mode) {
  const argv = programArgv(e);
  const nodeDir = e.argv[0] === 'node' ? nodeMount() : null;
  if (mode === 'sbx') {
    // No flags: the default policy and view, as a user types it (node outside /usr: bound, on PATH).
    const extra = nodeDir ? ['--mount', nodeDir, '--env', `PATH=${nodeDir}:${SANDBOX_PATH}`] : [];
    return [process.execPath, [sbxBin, 'run', ...extra, '--', ...argv]];
  }
  if (mode === 'bwrap') return ['bwrap', [...bwrapView(nodeDir), '--', ...argv]];
  // none: the host as it is, but a private /tmp (the corpus writes there) in a mount namespace.
  const priv = process.getuid() === 0 ? [] : ['-r'];
  return [
    'unshare',
    [
      ...priv,
      '-m',
      '--propagation',
      'private',
      '--',
      '/bin/sh',
      '-c',
      'mount -t tmpfs tmpfs /tmp && mkdir -p /dev/shm && exec "$0" "$@"',
      ...argv,
    ],
  ];
}

/** bubblewrap with a view like sbx's: read-only system dirs, a few /etc files, /proc, /dev, tmpfs /tmp. */
function bwrapView(nodeDir) {
  const a = [
    '--unshare-all',
    '--die-with-parent',
    '--new-session',
    '--hostname',
    'sandbox',
    '--uid',
    '1000',
    '--gid',
    '1000',
    '--clearenv',
  ];
  for (const d of ['/usr', '/bin', '/sbin', '/lib', '/lib64']) {
    const st = lstatSync(d, { throwIfNoEntry: false });
    if (!st) continue;
    // merged /usr: /bin -> usr/bin stays a link, as sbx's view keeps it
    if (st.isSymbolicLink()) a.push('--symlink', readlinkSync(d), d);
    else a.push('--ro-bind', d, d);
  }
  for (const f of [
    '/etc/ld.so.cache',
    '/etc/ld.so.conf',
    '/etc/localtime',
    '/etc/nsswitch.conf',
    '/etc/passwd',
    '/etc/group',
    '/etc/hosts',
  ])
    if (existsSync(f)) a.push('--ro-bind', f, f);
  if (nodeDir) a.push('--ro-bind', nodeDir, nodeDir);
  a.push('--proc', '/proc', '--dev', '/dev', '--tmpfs', '/tmp', '--chdir', '/');
  a.push(
    '--setenv',
    'PATH',
    nodeDir ? `${nodeDir}:${SANDBOX_PATH}` : SANDBOX_PATH,
    '--setenv',
    'HOME',
    '/tmp',
    '--setenv',
    'USER',
    'sandbox',
  );
  return a;
}

/** Runs one entry; resolves { entry, code, stdout, checkStdout, stderr, ms, ok, why }. */
export function runEntry(e, mode = 'sbx', { timeoutMs = 60_000 } = {}) {
  const [file, args] = commandFor(e, mode);
  const t0 = performance.now();
  return new Promise((resolve) => {
    const child = spawn(file, args, {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: mode === 'none' ? { PATH: SANDBOX_PATH, HOME: '/tmp', USER: 'sandbox' } : process.env,
    });
    const out = [];
    const err = [];
    child.stdout.on('data', (d) => out.push(d));
    child.stderr.on('data', (d) => err.push(d));
    child.stdin.on('error', () => {});
    child.stdin.end(e.stdin ?? '');
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const ms = performance.now() - t0;
      const all = Buffer.concat(out).toString();
      const cut = e.check ? all.lastIndexOf(CHECK_MARK) : -1;
      const stdout = cut >= 0 ? all.slice(0, cut) : all;
      const checkStdout = cut >= 0 ? all.slice(cut + CHECK_MARK.length) : undefined;
      const stderr = Buffer.concat(err).toString();
      resolve({
        entry: e,
        code: code ?? signal,
        stdout,
        checkStdout,
        stderr,
        ms,
        ...verdict(e, code, stdout, checkStdout),
      });
    });
  });
}

function verdict(e, code, stdout, checkStdout) {
  if (code !== 0) return { ok: false, why: `exit ${code}` };
  if (e.stdout !== undefined && stdout !== e.stdout)
    return { ok: false, why: `stdout ${JSON.stringify(stdout)}, expected ${JSON.stringify(e.stdout)}` };
  if (e.stdoutMatch !== undefined && !new RegExp(e.stdoutMatch).test(stdout))
    return { ok: false, why: `stdout ${JSON.stringify(stdout)} does not match /${e.stdoutMatch}/` };
  if (e.check && checkStdout !== e.checkStdout)
    return {
      ok: false,
      why: `check ${JSON.stringify(e.check)} printed ${JSON.stringify(checkStdout)}, expected ${JSON.stringify(e.checkStdout)}`,
    };
  return { ok: true, why: '' };
}

/** Runs every entry, `concurrency` at a time; resolves the results in corpus order and the total wall time. */
export async function runCorpus(entries, mode = 'sbx', concurrency = 3) {
  const results = new Array(entries.length);
  let next = 0;
  const t0 = performance.now();
  const worker = async () => {
    while (next < entries.length) {
      const i = next++;
      results[i] = await runEntry(entries[i], mode);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, entries.length) }, worker));
  return { results, ms: performance.now() - t0 };
}
