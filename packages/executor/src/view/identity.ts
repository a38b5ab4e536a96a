// identity.ts: the /etc files that give the sandbox's user a name. Inside the user namespace the
// sandboxee is uid/gid SANDBOX_ID; without an entry for it glibc's NSS goes past
// /etc/passwd to the host's nscd and systemd sockets. These generated files (passwd, group, a
// files-only nsswitch.conf, hosts) keep every name lookup inside the view.
import { chmodSync, mkdtempSync, rmdirSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Inside the user namespace the sandboxee is uid/gid 1000 (as in Sandbox2); isolation.ts maps it. */
export const SANDBOX_ID = 1000;
export const SANDBOX_USER = 'sandbox';
/** The sandbox user's home: the tmpfs /tmp (writable, empty at every start). */
export const SANDBOX_HOME = '/tmp';
/** Ids the kernel shows for files of unmapped owners (the host's root files, for instance). */
const OVERFLOW_ID = 65534;

export function passwdText(id = SANDBOX_ID): string {
  return [
    'root:x:0:0:root:/root:/usr/sbin/nologin',
    `${SANDBOX_USER}:x:${id}:${id}:sandbox user:${SANDBOX_HOME}:/bin/sh`,
    `nobody:x:${OVERFLOW_ID}:${OVERFLOW_ID}:nobody:/nonexistent:/usr/sbin/nologin`,
    '',
  ].join('\n');
}

export function groupText(id = SANDBOX_ID): string {
  return ['root:x:0:', `${SANDBOX_USER}:x:${id}:`, `nogroup:x:${OVERFLOW_ID}:`, ''].join('\n');
}

/** Files only: no nscd, systemd, sss or ldap module is ever asked. DNS stays for hosts (it needs a network). */
export function nsswitchText(): string {
  const db = ['passwd', 'group', 'shadow', 'gshadow', 'networks', 'protocols', 'services', 'ethers', 'rpc', 'netgroup'];
  return [...db.map((d) => `${d}: files`), 'hosts: files dns', ''].join('\n');
}

export function hostsText(hostname: string): string {
  return ['127.0.0.1\tlocalhost', '::1\tlocalhost ip6-localhost ip6-loopback', `127.0.1.1\t${hostname}`, ''].join('\n');
}

let dir: string | null = null;
const written = new Map<string, string>();

/**
 * A host file holding `text`, readable by every sandbox (0644 in a 0755 directory of this
 * process, removed at its exit). Equal texts share one file, so policies built for the same view
 * bind the same paths (the spawn pool keys its slots by the mount list).
 */
export function generatedFile(name: string, text: string): string {
  // Keyed by the text itself (no hash: node:crypto is a tenth of the CLI's start).
  const key = `${name}\0${text}`;
  const known = written.get(key);
  if (known) return known;
  if (!dir) {
    const d = mkdtempSync(join(tmpdir(), 'sbx-view-'));
    chmodSync(d, 0o755); // the sandbox's mount setup runs as its own (mapped) uid
    // Our own files, one by one: a recursive rmSync loads Node's rimraf and fails into its retry
    // path on the first rmdir, a few ms of a one-shot CLI run.
    process.once('exit', () => removeGenerated(d));
    dir = d;
  }
  const path = join(dir, `${name}-${written.size}`);
  writeFileSync(path, text, { mode: 0o644 });
  written.set(key, path);
  return path;
}

function removeGenerated(d: string): void {
  for (const path of [...written.values(), d]) {
    try {
      if (path === d) rmdirSync(d);
      else unlinkSync(path);
    } catch {
      // already gone (or a stranger's file in d keeps it): the system's tmp cleaning has the rest
    }
  }
}
