// start-fork-server.ts: starting a custom forkserver (custom-fork mode). It sits above Executor and
// Sandbox: the forkserver runs as an ordinary sandboxee (its own namespaces, mounts and limits, no
// seccomp filter: each child installs its own with sandboxMeHere), its Comms channel at fd 1023.
// custom.ts is the executor's link to it once it runs.
import { Executor, provideStartForkServer, type ForkServerOptions } from '../sandbox/executor.js';
import { Sandbox } from '../sandbox/sandbox.js';
import { ForkServerHandle, MAX_REPLY } from './custom.js';
import { checkChildPolicy, MAX_SANDBOXED_SPARES } from './sandboxed-spares.js';
import { Policy } from '../policy/policy.js';

export type { ForkServerOptions } from '../sandbox/executor.js';

/**
 * Custom-fork mode: starts `path` as a forkserver (a program using ForkingClient or
 * sbx/forking_client.h) in a sandbox of its own (no walltime unless limits say); `new
 * Executor(handle)` then forks sandboxees from it. Closing the handle, or this process's death,
 * ends it and all its children.
 */
export async function startForkServer(
  path: string,
  argv: readonly string[] | undefined,
  options: ForkServerOptions,
): Promise<ForkServerHandle> {
  if (options === null || typeof options !== 'object')
    throw new TypeError('Executor.startForkServer(path, argv, options): options must be an object with a policy');
  const { policy, forkTimeoutMs, childPolicy, sandboxedSpares, ...rest } = options;
  if (childPolicy !== undefined) {
    if (!(childPolicy instanceof Policy))
      throw new TypeError('Executor.startForkServer(): childPolicy must be a Policy (PolicyBuilder.build())');
    checkChildPolicy(childPolicy);
  }
  if (
    sandboxedSpares !== undefined &&
    (!Number.isInteger(sandboxedSpares) || sandboxedSpares < 0 || sandboxedSpares > MAX_SANDBOXED_SPARES)
  )
    throw new TypeError(
      `Executor.startForkServer(): sandboxedSpares must be an integer 0..${MAX_SANDBOXED_SPARES}, got ${String(sandboxedSpares)}`,
    );
  if (sandboxedSpares !== undefined && childPolicy === undefined)
    throw new TypeError(
      'Executor.startForkServer(): sandboxedSpares needs childPolicy (the policy they are sandboxed with)',
    );
  if (forkTimeoutMs !== undefined && (!Number.isFinite(forkTimeoutMs) || forkTimeoutMs <= 0))
    throw new TypeError(
      `Executor.startForkServer(): forkTimeoutMs must be a positive number, got ${String(forkTimeoutMs)}`,
    );
  if ('enableSandboxBeforeExec' in rest)
    throw new TypeError(
      'Executor.startForkServer(): enableSandboxBeforeExec does not apply (a forkserver runs without the policy filter; its children call sandboxMeHere)',
    );
  if (rest.isolation !== undefined && rest.isolation !== 'namespaces') {
    throw new TypeError(
      `Executor.startForkServer(): isolation ${JSON.stringify(rest.isolation)} is not supported for a forkserver (its children are walled off by namespaces and their own Landlock domains); use isolation: 'namespaces'`,
    );
  }
  const limits = rest.limits ?? {};
  const ex = new Executor(path, argv, {
    ...rest,
    limits: 'walltime' in limits ? limits : { ...limits, walltime: 0 },
    enableSandboxBeforeExec: false,
  });
  ex.ipc.setCommsOptions({ maxMessageSize: MAX_REPLY });
  const comms = ex.ipc.comms;
  const sandbox = new Sandbox(ex, policy);
  try {
    await sandbox.runAsync();
  } catch (err) {
    comms.close();
    throw err;
  }
  const result = sandbox.awaitResult();
  result.catch(() => {});
  const handle = new ForkServerHandle(comms, sandbox.pid, policy, result, () => sandbox.kill(), forkTimeoutMs);
  if (childPolicy && sandboxedSpares !== 0) handle.startSandboxedSpares(childPolicy, sandboxedSpares ?? 2);
  return handle;
}

// The deprecated Executor.startForkServer() alias calls this one (Executor cannot import it: cycle).
provideStartForkServer(startForkServer);
