/**
 * The policy layer as @sbx/executor's root exports it: PolicyBuilder and Policy, their data types,
 * PolicyError, and the syscall / errno name tables policies are written with. The compiler, cBPF
 * building blocks, evaluator and disassembler are expert tools: `@sbx/executor/bpf` (src/bpf.ts).
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
export type { PolicyErrorCode } from './errors.js';
export { formatNetworkRule } from './network.js';
export { ElfError } from './elf.js';
export { NODE_RUNTIME } from './presets.js';
export { errnoName, errnoNumber, hostArch, syscallName, syscallNumber } from './syscalls.js';
export type { Arch, TableArch } from './syscalls.js';
