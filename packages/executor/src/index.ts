// @sbx/executor: the trusted supervisor.
export {
  Executor,
  ExecutorError,
  DEFAULT_PATH,
  type ExecutorOptions,
  type ForkExecutorOptions,
  type StdioOption,
  type Isolation,
} from './sandbox/executor.js';
export { Limits, INFINITY, type LimitsOptions, type RlimitKey, type RlimitValue } from './sandbox/limits.js';
export type { UserLimitName, SetupFailure } from './forkserver/protocol.js';
export { Ipc, type FdMapping } from './sandbox/ipc.js';
export type { LogHandler, LogRecord } from './sandbox/log-channel.js';
export { Sandbox } from './sandbox/sandbox.js';
export { formatTimeline, type TimelineStage } from './sandbox/timeline.js';
export {
  DEFAULT_SYSCALL_TIMEOUT_MS,
  type HookedSyscall,
  type SandboxNotify,
  type SyscallAnswer,
} from './sandbox/notify-hooks.js';
export {
  formatStackTrace,
  type StackTrace,
  type StackFrame,
  type StackTraceOptions,
  type ResolvedStackTraceOptions,
} from './sandbox/stack-trace.js';
export {
  Result,
  violationFromJSON,
  violationToJSON,
  type Status,
  type Accounting,
  type Violation,
  type ViolationKind,
  type Arch as ViolationArch,
  type ResultFields,
  type ResultJSON,
  type ViolationJSON,
} from './sandbox/result.js';
export { ForkServerError } from './forkserver/global.js';
export {
  setSpawnPool,
  spawnPoolStats,
  autoPoolSize,
  SpawnPoolError,
  type SpawnPoolOptions,
  type SpawnPoolStats,
} from './forkserver/spawn-pool.js';
export { MountError } from './isolation/mounts.js';
export {
  setSandboxIdRange,
  sandboxIdRange,
  SandboxIdsError,
  DEFAULT_SANDBOX_ID_RANGE,
  type SandboxIdRange,
} from './sandbox/sandbox-ids.js';
export { hostChecks, formatChecks, type Check } from './doctor.js';
export * from './policy/index.js';
export {
  Comms,
  SyncComms,
  CommsError,
  SbxError,
  errorToJSON,
  Tag,
  tagName,
  type CommsOptions,
  type Message,
} from '@sbx/client';
export {
  SharedBuffer,
  SharedBuffer as Buffer,
  BufferError,
  type BufferErrorCode,
  type FromFdOptions,
  type RecvBufferOptions,
} from '@sbx/client';
export {
  loadPolicyFile,
  readPolicyFile,
  applyPolicyFile,
  POLICY_FILE_SCHEMA,
  PRESET_NAMES,
  type PolicyFile,
  type PolicyFileBind,
  type PolicyFileErrno,
  type PolicyFilePreset,
  type LoadPolicyFileOptions,
} from './policy-file/policy-file.js';
export { ForkServerHandle, ForkServerHandleError, type ForkServerHandleErrorCode } from './forkserver/custom.js';
export { ForkTrace, type ForkTraceStage, type ForkTraceProcess } from './forkserver/fork-trace.js';
export { startForkServer, type ForkServerOptions } from './forkserver/start-fork-server.js';
export {
  learnPolicy,
  learnPolicyFile,
  verifyPolicyFile,
  LearnError,
  type LearnOptions,
  type LearnReport,
  type LearnErrorCode,
} from './learn/learn.js';
export { LearnedFacts } from './learn/facts-set.js';
export { BASE_SET as LEARN_BASE_SET, ARG_FACTS as LEARN_ARG_FACTS, type ArgFactSpec } from './learn/facts.js';
export { argRule, type ArgAlternative, type ArgIndex, type ArgTest, type ArgValue } from './policy/arg-rules.js';
export { standardEnvironment, STANDARD_TMP_BYTES, type StandardViewOptions } from './view/standard-view.js';
export { resolveInView, resolveCommandInView } from './view/resolve.js';
export { COMMAND_LINE_FAMILIES, COMMAND_LINE_EPERM } from './policy/command-line.js';
export {
  run,
  RunError,
  DEFAULT_MAX_BUFFER,
  type RunOptions,
  type RunOutput,
  type RunPromise,
  type RunView,
  type RunErrorCode,
} from './run/run.js';
export { Runner, RunnerError, type RunnerOptions, type RunnerErrorCode } from './run/runner.js';
