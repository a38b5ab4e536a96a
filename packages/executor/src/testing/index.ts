// @sbx/executor/testing: test a sandbox like production. Run the real program under the real
// policy and fail with what was stopped and the policy line that would allow it.
//
//   import { runSandboxed, expectNoViolation } from '@sbx/executor/testing';
//   expectNoViolation(await runSandboxed(['/bin/echo', 'hi'], policy));
//
// With vitest: import '@sbx/executor/testing/vitest' (or list it in setupFiles), then
//   expect(await runSandboxed(argv, policy)).toRunWithoutViolation();
export { runSandboxed, expectNoViolation, describeResult, SandboxTestError, DEFAULT_TEST_WALLTIME } from './run.js';
export { suggestPolicyLine, type PolicySuggestion } from './suggest.js';
export { sbxMatchers, type MatcherResult } from './matchers.js';
