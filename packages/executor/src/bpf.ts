/**
 * @sbx/executor/bpf: the expert tools under the policy layer. The cBPF building blocks raw rules
 * are written with (PolicyBuilder.addRule), the seccomp compiler, a cBPF evaluator and
 * disassembler, the policy model, the network rule table and decision function, the ELF reader,
 * and the full syscall tables. Everyday use needs only the package root.
 *
 * @module
 */
export * from './policy/bpf.js';
export {
  NATIVE_AUDIT_ARCH,
  NOTIFY_DATA,
  clearCompileCache,
  compilePolicy,
  networkDecidedBits,
  resolveCompileOptions,
} from './policy/compiler.js';
export type { CompileOptions, CompileStats, CompiledPolicy, ResolvedCompileOptions } from './policy/compiler.js';
export { decodeRet, evaluate, isConstAllow, validateProgram } from './policy/evaluator.js';
export type { EvalResult, SeccompAction, SeccompData, Verdict } from './policy/evaluator.js';
export { classify } from './policy/classify.js';
export type { Classification } from './policy/classify.js';
export { describeRet, disassemble } from './policy/disassembler.js';
export type { DisassembleOptions } from './policy/disassembler.js';
export { interpretRule, modelVerdict } from './policy/model.js';
export type { ModelVerdict } from './policy/model.js';
export { ALWAYS_DENIED, SBX_EXEC_FD_TARGET, SBX_EXEC_MAGIC } from './policy/denials.js';
export type { ArgCondition, Denial } from './policy/denials.js';
export {
  decideNetwork,
  encodeNetworkTable,
  normalizeDestination,
  parseIpAddress,
  NET_SYSCALL_BITS,
} from './policy/network.js';
export type { NetworkDecision, NetworkDestination } from './policy/network.js';
export { readElf, resolveLibraries } from './policy/elf.js';
export type { ElfInfo, ResolveOptions, ResolvedLibraries } from './policy/elf.js';
export { SYSCALL_TABLES, suggestNames } from './policy/syscalls.js';
export type { SyscallTable } from './policy/syscalls.js';
