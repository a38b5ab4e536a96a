// executor-error.ts: the error of a misused Executor, Sandbox or Ipc (a leaf module: ipc.ts and
// executor.ts both throw it).
import { SbxError } from '@sbx/client';

/** A misuse of an Executor, a Sandbox or its Ipc (bad path, one run per executor...). */
export class ExecutorError extends SbxError {}
