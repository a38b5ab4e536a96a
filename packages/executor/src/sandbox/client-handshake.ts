// client-handshake.ts: the executor's half of sandbox-me-here mode (enableSandboxBeforeExec:
// false). The sandboxee runs inside its namespaces, filtered only by the io_uring denial (from
// exec: sandbox.ts), with one end of a dedicated
// socketpair at fd 1020; when it calls Client.sandboxMeHere() (libsbx_client), this serves it:
//   HELLO (version, threads, flags, listener fd) → POLICY (compiled for this mode) → INSTALLED
//   (the listener's fd number; taken with pidfd_getfd from the process the executor started) →
//   the monitor watches it → GO.
// docs/wire-protocol.md has the byte layout. A sandboxee that never calls it just runs.
import {
  Comms,
  CommsError,
  ClientTag,
  CLIENT_HELLO_SIZE,
  CLIENT_NO_FD,
  CLIENT_PROTOCOL_VERSION,
  DEFAULT_CLIENT_FD,
  tagName,
} from '@sbx/client';
import { closeQuietly, native } from '@sbx/client/internal';
import { type CompiledPolicy, compilePolicy } from '../policy/compiler.js';
import type { Policy } from '../policy/policy.js';
import { TRACE_TAG, type ForkTrace } from '../forkserver/fork-trace.js';

/** Largest message the sandboxee may send here (HELLO is 16 bytes, an Fd message is empty, a
 *  traced child's TRACE at most 8 + 24 × 16). */
const MAX_MESSAGE = 512;

export interface ClientHandshakeHooks {
  /**
   * Takes fd `n` of the sandboxee that called sandboxMeHere() (pidfd_getfd on the process the
   * executor started). Rejects with a reason when it cannot.
   */
  take(n: number): Promise<number>;
  /** The listener arrived (taken): start watching it. May throw; the sandbox is then killed. */
  watch(listenerFd: number): void;
  /** Something went wrong after the policy was sent: record the reason and kill the sandbox. */
  fail(reason: string): void;
  /** A traced request (custom-fork mode): the handshake's stages, then the child's TRACE after GO. */
  trace?: ForkTrace;
  /** Leave the channel open after GO (a sandboxed spare gets its request on it later). */
  keepOpen?: boolean;
}

/** What a pending handshake needs before the spawn: the channel and the sandboxee's end. */
export interface PreparedClientHandshake {
  /** The executor's end (taken by serveClientHandshake). */
  channel: Comms;
  /** The sandboxee's end, to map at DEFAULT_CLIENT_FD (close it once the spawn is done). */
  theirs: number;
  /**
   * The policy program when it does not depend on HELLO (the policy allows close() anyway, so
   * the listener's number changes nothing): it is sent at once, before HELLO arrives, and the
   * client finds it waiting. Saves a round trip through the executor's event loop.
   */
  early: Buffer | null;
  /** The early POLICY's write, made by prepareClientHandshake() while this process still holds
   *  `theirs`: a sandboxee that sends HELLO and exits at once cannot make it fail with EPIPE,
   *  which would close the channel with its HELLO unread (a lie gone unnoticed). */
  earlySent: Promise<void> | null;
}

/** The fd the handshake socket gets in the sandboxee (SBX_CLIENT_FD). */
export const CLIENT_FD = DEFAULT_CLIENT_FD;

/** The compile options of a policy for this mode; `listenerFd` -1 when the client did not say. */
export function clientCompileOptions(listenerFd: number) {
  return { monitor: true, execPrologue: false, clientChannelFd: CLIENT_FD, clientListenerFd: listenerFd } as const;
}

/**
 * Makes the handshake socketpair and compiles the policy for this mode: a bad policy rejects
 * run() before anything starts (as in before-exec mode), and when the program does not depend on
 * the client's listener number it is kept to go out before HELLO.
 */
export function prepareClientHandshake(policy: Policy): PreparedClientHandshake {
  const early = earlyProgram(policy);
  const [ours, theirs] = native().socketpair(false, false);
  const channel = new Comms(ours, { maxMessageSize: MAX_MESSAGE });
  const earlySent = early ? channel.sendTLV(ClientTag.Policy, early) : null;
  earlySent?.catch(() => {}); // awaited (and its failure seen) by serveClientHandshake
  return { channel, theirs, early, earlySent };
}

/** A Policy is immutable: its early program is compiled once (custom-fork mode starts many). */
const earlyPrograms = new WeakMap<Policy, Buffer | null>();
function earlyProgram(policy: Policy): Buffer | null {
  let early = earlyPrograms.get(policy);
  if (early === undefined) {
    const generic = programOf(compilePolicy(policy, clientCompileOptions(-1)).program);
    // Any number would do: if the close() rule changes nothing for one, it changes nothing at all.
    const withRule = programOf(compilePolicy(policy, clientCompileOptions(3)).program);
    early = generic.equals(withRule) ? generic : null;
    earlyPrograms.set(policy, early);
  }
  return early;
}

function programOf(program: Uint8Array): Buffer {
  return Buffer.from(program.buffer, program.byteOffset, program.byteLength);
}

/**
 * Serves one handshake on `prepared.channel` (taken: closed when done). Resolves when the
 * handshake is over: GO sent, or the sandboxee closed the channel (it exited, or gave up). Never
 * rejects: failures after POLICY go to hooks.fail (the sandbox dies); before it the sandboxee
 * gets an ERROR and stays unfiltered, so its own code decides.
 */
export async function serveClientHandshake(
  prepared: PreparedClientHandshake,
  policy: Policy,
  hooks: ClientHandshakeHooks,
): Promise<void> {
  const channel = prepared.channel;
  let policySent = false;
  // A HELLO means the sandboxee asked to be sandboxed: from then on, unless GO went out, the
  // sandbox must not end as if it had been (the client failed, or lied, and may carry on unfiltered).
  let helloReceived = false;
  let watched = false; // the monitor has the listener: the filter is on
  let goSent = false;
  try {
    if (prepared.early) {
      policySent = true;
      await (prepared.earlySent ?? channel.sendTLV(ClientTag.Policy, prepared.early));
    }

    // HELLO
    const hello = await channel.recvAny();
    hooks.trace?.mark('HELLO received');
    if (hello.fd >= 0) closeQuietly(hello.fd);
    let problem: string | null = null;
    if (hello.tag !== ClientTag.Hello || hello.data.length !== CLIENT_HELLO_SIZE) {
      problem = `expected HELLO (${CLIENT_HELLO_SIZE} bytes), got ${tagName(hello.tag)} of ${hello.data.length} bytes`;
    } else if (hello.data.readUInt32LE(0) !== CLIENT_PROTOCOL_VERSION) {
      problem = `the client speaks handshake version ${hello.data.readUInt32LE(0)}, this executor ${CLIENT_PROTOCOL_VERSION} (update @sbx/client or libsbx_client)`;
    }
    if (problem && policySent) {
      // The policy went out before HELLO: a client that cannot be served must not go on.
      hooks.fail(`sandboxMeHere handshake: ${problem}`);
      return;
    }
    if (problem) return await refuse(channel, problem);
    helloReceived = true;

    // POLICY, unless it went out early
    if (!policySent) {
      const hint = hello.data.readUInt32LE(12);
      const listenerFd = hint === CLIENT_NO_FD || hint > 0x7fffffff ? -1 : hint;
      let compiled: CompiledPolicy;
      try {
        compiled = compilePolicy(policy, clientCompileOptions(listenerFd));
      } catch (err) {
        return await refuse(channel, `the policy does not compile: ${(err as Error).message}`);
      }
      policySent = true;
      await channel.sendTLV(ClientTag.Policy, programOf(compiled.program));
    }

    // INSTALLED: where the listener is
    const m = await channel.recvAny();
    hooks.trace?.mark('INSTALLED received');
    if (m.fd >= 0) closeQuietly(m.fd);
    if (m.tag !== ClientTag.Installed || m.data.length !== 4 || m.fd >= 0) {
      hooks.fail(
        `sandboxMeHere handshake: expected INSTALLED (the listener's fd number, 4 bytes), got ${tagName(m.tag)} of ${m.data.length} bytes${m.fd >= 0 ? ' with an fd' : ''}`,
      );
      return;
    }
    const n = m.data.readUInt32LE(0);
    let listener: number;
    try {
      if (n > 0x7fffffff) throw new Error(`${n} is no fd number`);
      listener = await hooks.take(n);
      hooks.trace?.mark('listener taken');
    } catch (err) {
      hooks.fail(
        `sandboxMeHere handshake: cannot take the seccomp listener (fd ${n} of the sandboxee): ${(err as Error).message}`,
      );
      return;
    }
    try {
      // The monitor checks that it is a seccomp listener (and takes it either way).
      hooks.watch(listener);
      watched = true;
      hooks.trace?.mark('monitor watching');
    } catch (err) {
      hooks.fail(`sandboxMeHere handshake: the monitor cannot watch the listener: ${(err as Error).message}`);
      await channel.sendTLV(ClientTag.Error, Buffer.from('the monitor cannot watch the listener')).catch(() => {});
      return;
    }

    // GO
    await channel.sendTLV(ClientTag.Go);
    goSent = true;
    if (hooks.trace) {
      hooks.trace.mark('GO sent');
      // The child's own stamps follow GO (libsbx_client, when its request was traced). A child
      // that ends first, or sends something else, leaves the trace without them.
      const t = await channel.recvAny().catch(() => null);
      if (t?.fd !== undefined && t.fd >= 0) closeQuietly(t.fd);
      if (t && t.tag === TRACE_TAG && t.fd < 0) hooks.trace.addRecords('child', t.data);
    }
  } catch (err) {
    // The sandboxee closed the channel: it exited (or its client failed and it went on). Before
    // the policy nothing is on; after it the monitor (if it got the listener) has the rest.
    const closed = err instanceof CommsError && (err.code === 'PEER_CLOSED' || err.code === 'CLOSED');
    if (policySent && helloReceived && !watched && closed) {
      hooks.fail(
        'sandboxMeHere handshake: the sandboxee asked for its policy but never installed it (it closed the handshake channel before INSTALLED): it ran unfiltered',
      );
    } else if (policySent && !closed) hooks.fail(`sandboxMeHere handshake: ${(err as Error).message}`);
  } finally {
    if (!(hooks.keepOpen && goSent)) channel.close();
  }
}

async function refuse(channel: Comms, reason: string): Promise<void> {
  await channel.sendTLV(ClientTag.Error, Buffer.from(reason, 'utf8')).catch(() => {});
}
