/** Errors of the policy layer. Misuse of the API (wrong argument types) throws TypeError instead. */

import { SbxError } from '@sbx/client';

export type PolicyErrorCode =
  | 'INVALID_POLICY' // PolicyBuilder.build() found problems; all are listed in `problems`
  | 'ALREADY_BUILT' // build() was called twice on one builder
  | 'INVALID_RULE' // a raw BPF rule is malformed (bad label, jump out of the rule, bad operand)
  | 'JUMP_OUT_OF_RANGE' // a conditional jump in a user rule spans more than 255 instructions
  | 'PROGRAM_TOO_LONG' // the compiled filter exceeds BPF_MAXINSNS (4096)
  | 'INVALID_PROGRAM'; // a sock_filter program the evaluator cannot run (bad opcode, bad jump, no ret)

/** A policy that cannot be built or compiled. `problems` lists every reason, one sentence each. */
export class PolicyError extends SbxError {
  declare readonly code: PolicyErrorCode;
  readonly problems: string[];
  constructor(code: PolicyErrorCode, problems: string[] | string, options?: { cause?: unknown }) {
    const list = typeof problems === 'string' ? [problems] : problems;
    const message =
      list.length === 1
        ? list[0]!
        : `${list.length} problems in the policy:\n${list.map((p) => `  - ${p}`).join('\n')}`;
    super(code, message, options);
    this.problems = list;
  }
}
