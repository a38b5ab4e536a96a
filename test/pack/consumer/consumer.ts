// A TypeScript consumer compiled with tsc --strict: the package types, including the testing and bpf entries.
import { Executor, PolicyBuilder, Sandbox, type Result, type Violation } from '@sbx/executor';
import { ALLOW, compilePolicy, type CompiledPolicy } from '@sbx/executor/bpf';
import { expectNoViolation, suggestPolicyLine, type PolicySuggestion } from '@sbx/executor/testing';
import { SyncComms, type Message } from '@sbx/client';

const policy = new PolicyBuilder()
  .allowDynamicStartup()
  .allowWrite()
  .allowExit()
  .allowSyscall('ioctl')
  .addLibrariesForBinary('/bin/echo')
  .build();
const executor = new Executor('/bin/echo', ['echo', 'echo from the typescript consumer'], { limits: { walltime: 10 } });
const result: Result = expectNoViolation(await new Sandbox(executor, policy).run());
const violation: Violation | undefined = result.violation;
const suggestion: PolicySuggestion | undefined = violation ? suggestPolicyLine(violation) : undefined;
const unused: [typeof SyncComms, Message | undefined] = [SyncComms, undefined];
const compiled: CompiledPolicy = compilePolicy(policy);
if (compiled.length === 0 || ALLOW.kind !== 'ret') throw new Error('@sbx/executor/bpf: compilePolicy gave no program');
console.log(`ts consumer: ${result.toString()} ${suggestion?.builder ?? ''}${unused.length === 2 ? '' : '?'}`);
