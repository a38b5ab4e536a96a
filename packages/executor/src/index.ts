// @sbx/executor: the trusted supervisor.
export { Executor, ExecutorError, DEFAULT_PATH, type ExecutorOptions, type StdioOption, type Isolation } from './executor.js';
export { Limits, INFINITY, type LimitsOptions } from './limits.js';
export { Ipc, type FdMapping } from './ipc.js';
export { Sandbox } from './sandbox.js';
export { Result, type Status, type Violation, type ViolationKind, type Arch as ViolationArch, type ResultFields } from './result.js';
export { ForkServerError } from './forkserver.js';
export { setSpawnPool, spawnPoolStats, autoPoolSize, SpawnPoolError, type SpawnPoolOptions, type SpawnPoolStats } from './spawn-pool.js';
export { MountError } from './mounts.js';
export { hostChecks, formatChecks, type Check } from './doctor.js';
export * from './policy/index.js';
export { Comms, SyncComms, CommsError, SbxError, errorToJSON, Tag, tagName, type CommsOptions, type Message } from '@sbx/client';
export { SharedBuffer, SharedBuffer as Buffer, BufferError, type BufferErrorCode, type FromFdOptions, type RecvBufferOptions } from '@sbx/client';
export { loadPolicyFile, readPolicyFile, applyPolicyFile, POLICY_FILE_SCHEMA, PRESET_NAMES, type PolicyFile, type PolicyFileBind, type PolicyFileErrno, type PolicyFilePreset, type LoadPolicyFileOptions } from './policy-file.js';
export { ForkServerHandle, ForkServerHandleError, type ForkServerOptions } from './fork-server.js';
export { learnPolicy, learnPolicyFile, verifyPolicyFile, LearnError, type LearnOptions, type LearnReport, type LearnErrorCode } from './learn/learn.js';
export { LearnedFacts } from './learn/facts-set.js';
export { BASE_SET as LEARN_BASE_SET, ARG_FACTS as LEARN_ARG_FACTS, type ArgFactSpec } from './learn/facts.js';
export { argRule, type ArgAlternative, type ArgIndex, type ArgTest, type ArgValue } from './policy/arg-rules.js';
