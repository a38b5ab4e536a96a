// Client.sandboxMeHere() refusals that happen before anything is installed, so they can run in
// the test process itself. The sandboxing itself is tested end to end in test/client.test.ts.
import { closeSync, openSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { Client, defaultClientFd, DEFAULT_CLIENT_FD } from './client.js';
import { ClientError, SbxError } from './errors.js';
import { native } from './native.js';

function refusal(fn: () => void): ClientError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ClientError);
    expect(err).toBeInstanceOf(SbxError);
    return err as ClientError;
  }
  throw new Error('expected a ClientError');
}

describe('Client.sandboxMeHere() before the install', () => {
  afterEach(() => {
    delete process.env.SBX_CLIENT_FD;
  });

  it('rejects bad options with TypeError', () => {
    expect(() => Client.sandboxMeHere(null as never)).toThrow(TypeError);
    expect(() => Client.sandboxMeHere({ fdd: 3 } as never)).toThrow(/unknown option "fdd"/);
    expect(() => Client.sandboxMeHere({ fd: -1 })).toThrow(TypeError);
    expect(() => Client.sandboxMeHere({ fd: 3, assumeNoTsync: 1 as never })).toThrow(TypeError);
  });

  it('NOT_IN_SANDBOX when the handshake fd is not open or not a socket, or $SBX_CLIENT_FD is garbage', () => {
    const closed = refusal(() => Client.sandboxMeHere({ fd: 999 }));
    expect(closed.code).toBe('NOT_IN_SANDBOX');
    expect(closed.errno).toBe(9);
    expect(closed.filterInstalled).toBe(false);
    expect(closed.message).toMatch(/fd 999 \(SBX_CLIENT_FD\) is not open/);
    const fd = openSync('/dev/null', 'r');
    try {
      expect(refusal(() => Client.sandboxMeHere({ fd })).message).toMatch(/is not a unix stream socket/);
    } finally {
      closeSync(fd);
    }
    process.env.SBX_CLIENT_FD = '12x';
    expect(() => defaultClientFd()).toThrow(/SBX_CLIENT_FD="12x" is not a file descriptor number/);
    expect(refusal(() => Client.sandboxMeHere()).code).toBe('NOT_IN_SANDBOX');
    process.env.SBX_CLIENT_FD = '7';
    expect(defaultClientFd()).toBe(7);
    delete process.env.SBX_CLIENT_FD;
    expect(defaultClientFd()).toBe(DEFAULT_CLIENT_FD);
    expect(Client.isSandboxed).toBe(false);
  });

  it('EXECUTOR_GONE when the executor closed the channel before the policy', () => {
    const [ours, theirs] = native().socketpair(false, false);
    native().close(ours);
    try {
      const err = refusal(() => Client.sandboxMeHere({ fd: theirs }));
      expect(err.code).toBe('EXECUTOR_GONE');
      expect(err.message).toMatch(/sending HELLO: the executor closed the handshake channel/);
      expect(err.filterInstalled).toBe(false);
    } finally {
      native().close(theirs);
    }
    expect(Client.filterInstalled).toBe(false);
  });

  it('reports what the kernel offers', () => {
    const k = Client.kernelSupport();
    expect(typeof k.listener).toBe('boolean');
    expect(typeof k.tsyncWithListener).toBe('boolean');
    if (k.tsyncWithListener) expect(k.listener).toBe(true);
  });
});
