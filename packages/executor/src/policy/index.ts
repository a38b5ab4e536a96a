/**
 * The policy layer of @sbx/executor: PolicyBuilder and Policy, the seccomp compiler, a cBPF
 * evaluator and disassembler, the policy model, and the syscall tables.
 */
export { PolicyBuilder } from './policy-builder.js';
export type {
  BindOptions,
  LibrariesOptions,
  NodeRuntimeOptions,
  PolicyBuilderOptions,
  SyscallRef,
  TmpfsOptions,
} from './policy-builder.js';
export { Policy, stableStringify } from './policy.js';
export type {
  BindMount,
  DefaultAction,
  Mount,
  NetworkDenyAction,
  NetworkPolicy,
  NetworkRule,
  PolicyData,
  SyscallRule,
  TmpfsMount,
} from './policy.js';
export { PolicyError } from './errors.js';
export { decideNetwork, encodeNetworkTable, formatNetworkRule, normalizeDestination, parseIpAddress, NET_SYSCALL_BITS } from './network.js';
export type { NetworkDecision, NetworkDestination } from './network.js';
export type { PolicyErrorCode } from './errors.js';
export * from './bpf.js';
export {
  NATIVE_AUDIT_ARCH,
  NOTIFY_DATA,
  clearCompileCache,
  compilePolicy,
  networkDecidedBits,
  resolveCompileOptions,
} from './compiler.js';
export type { CompileOptions, CompileStats, CompiledPolicy, ResolvedCompileOptions } from './compiler.js';
export { decodeRet, evaluate, isConstAllow, validateProgram } from './evaluator.js';
export type { EvalResult, SeccompAction, SeccompData, Verdict } from './evaluator.js';
export { classify } from './classify.js';
export type { Classification } from './classify.js';
export { describeRet, disassemble } from './disassembler.js';
export type { DisassembleOptions } from './disassembler.js';
export { interpretRule, modelVerdict } from './model.js';
export type { ModelVerdict } from './model.js';
export { ALWAYS_DENIED, SBX_EXEC_FD_TARGET, SBX_EXEC_MAGIC } from './denials.js';
export type { ArgCondition, Denial } from './denials.js';
export { ElfError, readElf, resolveLibraries } from './elf.js';
export type { ElfInfo, ResolveOptions, ResolvedLibraries } from './elf.js';
export { NODE_RUNTIME } from './presets.js';
export {
  SYSCALL_TABLES,
  errnoName,
  errnoNumber,
  hostArch,
  suggestNames,
  syscallName,
  syscallNumber,
} from './syscalls.js';
export type { Arch, SyscallTable, TableArch } from './syscalls.js';
