// Terminal injection on a real pty (CVE-2017-5226 class, and CVE-2019-10063: high bits in the
// ioctl cmd). policy.test.ts tries TIOCSTI on /dev/null; here the sandboxee holds the slave of a
// real pseudo-terminal and pushes a byte with TIOCSTI. A control run of the same probe outside any
// sandbox (which first makes the pty its controlling terminal: setsid + TIOCSCTTY) shows the byte
// really arrives (echoed to the master) when nothing stops it. Inside, TIOCSCTTY itself is denied,
// with the other ioctls that take, break or hang up the caller's terminal (issue #18 item 7).
//
// How the pty reaches the sandboxee: Node cannot open a pty, so native/testcases/pty_pair opens
// one and passes master and slave back over a Comms socket. Stdio fds 0-2 always come from the
// Executor's stdio option (a mapFd onto 0 would duplicate that mapping), so the slave is mapped
// as fd 5 with ipc.mapFd and the probe is told its number; for TIOCSTI the fd number does not
// matter, only that the tty is the caller's controlling terminal.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, closeSync, mkdtempSync, readSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Comms } from '@sbx/client';
import { native } from '@sbx/client/internal';
import { repoRoot, testcase } from '../helpers.js';
import { asRoot, executorStaysUnharmed, expectViolation, lines, probe, probePath } from './harness.js';

executorStaysUnharmed();

interface Pty {
  master: number;
  slave: number;
  close(): void;
}

async function openPty(): Promise<Pty> {
  const [comms, theirs] = Comms.pair();
  const child = spawn(testcase('pty_pair'), [], { stdio: ['ignore', 'inherit', 'inherit', theirs] });
  native().close(theirs);
  const master = await comms.recvFd();
  const slave = await comms.recvFd();
  comms.close();
  const [code] = await once(child, 'exit');
  expect(code).toBe(0);
  return {
    master,
    slave,
    close() {
      closeSync(master);
      closeSync(slave);
    },
  };
}

/** What the master can read now: the bytes, or the errno code when there are none (EAGAIN: the
 *  master is non-blocking; EIO: the terminal was hung up when its session leader died). */
function readMaster(fd: number): string {
  const buf = Buffer.alloc(256);
  try {
    return buf.subarray(0, readSync(fd, buf)).toString();
  } catch (err) {
    return (err as NodeJS.ErrnoException).code ?? 'error';
  }
}

describe('TIOCSTI / TIOCLINUX on a real pty', () => {
  it('control: outside a sandbox, the probe does push a byte into the pty (high bits ignored by the kernel)', async () => {
    const pty = await openPty();
    try {
      const child = spawn(probePath(), ['pty-tiocsti-high', '3', 'ctty'], {
        stdio: ['ignore', 'pipe', 'inherit', pty.slave],
      });
      let out = '';
      child.stdout!.on('data', (d) => (out += d));
      await once(child, 'exit');
      if (/pty-tiocsti-high: errno EIO/.test(out)) return; // dev.tty.legacy_tiocsti=0 here: nothing to control
      expect(out).toBe('tiocsctty: ok\npty-tiocsti-high: calling\npty-tiocsti-high: ok\n');
      expect(readMaster(pty.master)).toBe('x');
    } finally {
      pty.close();
    }
  });

  for (const name of ['pty-tiocsti', 'pty-tiocsti-high']) {
    it(`${name}: TIOCSTI on the pty is a violation, nothing arrives`, async () => {
      const pty = await openPty();
      try {
        const c = await probe([name, '5'], { before: (_s, e) => e.ipc.mapFd(pty.slave, 5) });
        expectViolation(c, 'ioctl', name);
        expect(lines(c)).toEqual([`${name}: calling`]);
        expect(c.result.violation?.args[0]).toBe(5n);
        expect(Number(c.result.violation!.args[1]! & 0xffffffffn)).toBe(0x5412); // TIOCSTI
        if (name === 'pty-tiocsti-high') expect(c.result.violation!.args[1]! >> 32n).toBe(0xffffffffn);
        expect(['EAGAIN', 'EIO']).toContain(readMaster(pty.master));
      } finally {
        pty.close();
      }
    });
  }

  it('TIOCLINUX with high bits in the cmd on the pty is a violation', async () => {
    const pty = await openPty();
    try {
      const c = await probe(['pty-tioclinux', '5'], { before: (_s, e) => e.ipc.mapFd(pty.slave, 5) });
      expectViolation(c, 'ioctl', 'pty-tioclinux');
      expect(Number(c.result.violation!.args[1]! & 0xffffffffn)).toBe(0x541c); // TIOCLINUX
      expect(['EAGAIN', 'EIO']).toContain(readMaster(pty.master));
    } finally {
      pty.close();
    }
  });

  it('TIOCSCTTY (setsid first) is a violation: the sandboxee cannot make the pty its controlling terminal', async () => {
    const pty = await openPty();
    try {
      const c = await probe(['pty-ioctl', 'tiocsctty', '5'], { before: (_s, e) => e.ipc.mapFd(pty.slave, 5) });
      expectViolation(c, 'ioctl', 'tiocsctty');
      expect(Number(c.result.violation!.args[1]! & 0xffffffffn)).toBe(0x540e);
    } finally {
      pty.close();
    }
  });

  it('the sandboxee has no controlling terminal of its own: no /dev/tty, not a session leader', async () => {
    const c = await probe(['tty']);
    expect(c.result.status).toBe('OK');
    expect(lines(c)).toEqual(['open /dev/tty: errno ENOENT', 'sid is pid: no']);
  });
});

describe("ioctls that break the caller's terminal", () => {
  /** The pty's line discipline, asked by the probe outside any sandbox. */
  async function ldisc(pty: Pty): Promise<string> {
    const child = spawn(probePath(), ['pty-getd', '3'], { stdio: ['ignore', 'pipe', 'inherit', pty.slave] });
    let out = '';
    child.stdout!.on('data', (d) => (out += d));
    await once(child, 'exit');
    return out.trim();
  }

  it('control: outside a sandbox, TIOCSETD N_NULL does change the line discipline', async () => {
    const pty = await openPty();
    try {
      expect(await ldisc(pty)).toBe('ldisc: 0');
      const child = spawn(probePath(), ['pty-ioctl', 'tiocsetd', '3'], {
        stdio: ['ignore', 'pipe', 'inherit', pty.slave],
      });
      let out = '';
      child.stdout!.on('data', (d) => (out += d));
      await once(child, 'exit');
      expect(out).toBe('tiocsetd: calling\ntiocsetd: ok\n');
      expect(await ldisc(pty)).toBe('ldisc: 27');
    } finally {
      pty.close();
    }
  });

  for (const [name, cmd] of [
    ['tiocsetd', 0x5423],
    ['tiocvhangup', 0x5437],
    ['tiocexcl', 0x540c],
    ['tioccons', 0x541d],
  ] as const) {
    it(`${name.toUpperCase()} on the pty is a violation; the terminal keeps working (N_TTY)`, async () => {
      const pty = await openPty();
      try {
        const c = await probe(['pty-ioctl', name, '5'], { before: (_s, e) => e.ipc.mapFd(pty.slave, 5) });
        expectViolation(c, 'ioctl', name);
        expect(Number(c.result.violation!.args[1]! & 0xffffffffn)).toBe(cmd);
        expect(await ldisc(pty)).toBe('ldisc: 0');
      } finally {
        pty.close();
      }
    });
  }
});

describe('sbx run on a terminal left in a bad state', () => {
  /** Runs the probe outside any sandbox on the pty's slave (as fd 3). */
  async function onHost(pty: Pty, args: string[]): Promise<string> {
    const child = spawn(probePath(), args, { stdio: ['ignore', 'pipe', 'inherit', pty.slave] });
    let out = '';
    child.stdout!.on('data', (d) => (out += d));
    await once(child, 'exit');
    return out;
  }

  // sbx run with the pty as its stdio; once the sandboxee said "ready", something outside breaks
  // the terminal, then the sandboxee is let go (a file in a mounted directory) and ends.
  for (const [what, args] of [
    ['its line discipline set to N_NULL', ['pty-ioctl', 'tiocsetd', '3']],
    ['hung up (TIOCVHANGUP)', ['pty-ioctl', 'tiocvhangup', '3']],
  ] as const) {
    it.skipIf(what.startsWith('hung') && !asRoot)(
      `${what} meanwhile: sbx exits with the sandboxee's code, no SIGABRT`,
      async () => {
        const pty = await openPty();
        const dir = mkdtempSync(join(tmpdir(), 'sbx-tty-'));
        chmodSync(dir, 0o755); // the sandboxee is another uid
        try {
          const script = 'echo ready; while [ ! -e /go/go ]; do sleep 0.02; done; exit 7';
          const sbx = spawn(
            process.execPath,
            [
              join(repoRoot, 'packages/executor/bin/sbx.js'),
              'run',
              '--walltime',
              '30',
              '--mount',
              `${dir}:/go:rw`,
              '--',
              '/bin/sh',
              '-c',
              script,
            ],
            {
              stdio: [pty.slave, pty.slave, pty.slave],
              detached: true,
            },
          );
          const exited = once(sbx, 'exit');
          let seen = '';
          for (let i = 0; i < 1000 && !seen.includes('ready'); i++) {
            const got = readMaster(pty.master);
            if (got === 'EAGAIN') await new Promise((r) => setTimeout(r, 20));
            else seen += got;
          }
          expect(seen).toContain('ready');
          expect(await onHost(pty, [...args])).toMatch(/: ok\n$/);
          writeFileSync(join(dir, 'go'), '');
          const [code, signal] = await exited;
          expect({ code, signal }).toEqual({ code: 7, signal: null });
          if (what.startsWith('its line')) expect((await onHost(pty, ['pty-getd', '3'])).trim()).toBe('ldisc: 0'); // sbx put N_TTY back
        } finally {
          pty.close();
          rmSync(dir, { recursive: true, force: true });
        }
      },
    );
  }
});
