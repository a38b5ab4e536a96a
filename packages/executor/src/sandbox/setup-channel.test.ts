// setup-channel.test.ts: takeListener() against a real process's fd table (this process's own,
// through its pidfd): it takes an fd that exists, waits while the fd is missing (EBADF) until
// the caller gives up, and names any other failure.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, fstatSync, openSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { native } from '@sbx/client/internal';
import { ListenerError, takeListener } from './setup-channel.js';

const self = native().pidfdOpen(process.pid);
afterAll(() => closeSync(self));

describe('takeListener', () => {
  it('takes the fd once it exists: a duplicate of the same file', async () => {
    const fd = openSync('/dev/null', 'r');
    const taken = await takeListener(self, fd, () => false);
    expect(taken).not.toBe(fd);
    expect(fstatSync(taken).ino).toBe(fstatSync(fd).ino);
    closeSync(taken);
    closeSync(fd);
  });

  it('retries while the fd is missing, and takes it when it appears', async () => {
    const fd = openSync('/dev/null', 'r');
    closeSync(fd); // the number is free now: EBADF until it is opened again
    let attempts = 0;
    let reopened = -1;
    const taken = await takeListener(self, fd, () => {
      if (++attempts === 3) reopened = openSync('/dev/null', 'r'); // the lowest free number: fd
      return false;
    });
    expect(attempts).toBe(3);
    expect(reopened).toBe(fd);
    expect(fstatSync(taken).ino).toBe(fstatSync(reopened).ino);
    closeSync(taken);
    closeSync(reopened);
  });

  it('returns -1 when the caller gives up while the fd is missing', async () => {
    let attempts = 0;
    expect(await takeListener(self, 1_000_000, () => ++attempts === 5)).toBe(-1);
    expect(attempts).toBe(5);
  });

  it('names a failure other than EBADF at once (a process that is gone: ESRCH)', async () => {
    const child = spawn('/bin/true');
    const pidfd = native().pidfdOpen(child.pid!);
    await once(child, 'exit');
    let attempts = 0;
    const taken = takeListener(pidfd, 0, () => ++attempts > 0);
    await expect(taken).rejects.toThrow(ListenerError);
    await expect(taken).rejects.toThrow(/pidfd_getfd\(sandboxee, 0\) for the seccomp listener: .*No such process/);
    expect(attempts).toBe(0);
    closeSync(pidfd);
  });
});
