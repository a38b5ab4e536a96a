// runner.ts: admission control for a service that runs sandboxes per request: at most
// `concurrency` sandboxes at once (p-limit keeps the count), at most `maxQueue` runs waiting for
// a slot; past that, run() rejects at once with RunnerError('QUEUE_FULL'), which a service
// answers with 503 instead of letting latency and memory grow without bound.
import pLimit, { type LimitFunction } from 'p-limit';
import { SbxError } from '@sbx/client';
import { run, type RunOptions, type RunOutput } from './run.js';

export type RunnerErrorCode = 'QUEUE_FULL' | 'BAD_OPTION';

export class RunnerError extends SbxError {
  declare readonly code: RunnerErrorCode;
  constructor(code: RunnerErrorCode, message: string) {
    super(code, message);
  }
}

export interface RunnerOptions {
  /** Sandboxes running at once (default 4: about one per core is a good start). */
  concurrency?: number;
  /** Runs waiting for a slot before run() rejects with QUEUE_FULL (default 4 × concurrency). */
  maxQueue?: number;
}

export class Runner {
  readonly concurrency: number;
  readonly maxQueue: number;
  readonly #limit: LimitFunction;

  constructor(options: RunnerOptions = {}) {
    if (options === null || typeof options !== 'object')
      throw new RunnerError('BAD_OPTION', 'Runner: options must be an object');
    for (const k of Object.keys(options))
      if (k !== 'concurrency' && k !== 'maxQueue')
        throw new RunnerError('BAD_OPTION', `Runner: unknown option "${k}" (known: concurrency, maxQueue)`);
    const concurrency = options.concurrency ?? 4;
    if (!Number.isSafeInteger(concurrency) || concurrency < 1)
      throw new RunnerError(
        'BAD_OPTION',
        `Runner: concurrency must be an integer >= 1, got ${String(options.concurrency)}`,
      );
    const maxQueue = options.maxQueue ?? 4 * concurrency;
    if (!(Number.isSafeInteger(maxQueue) || maxQueue === Infinity) || maxQueue < 0)
      throw new RunnerError(
        'BAD_OPTION',
        `Runner: maxQueue must be an integer >= 0 (or Infinity), got ${String(options.maxQueue)}`,
      );
    this.concurrency = concurrency;
    this.maxQueue = maxQueue;
    this.#limit = pLimit(concurrency);
  }

  /** Sandboxes running now. */
  get active(): number {
    return this.#limit.activeCount;
  }

  /** Runs waiting for a slot. */
  get queued(): number {
    return this.#limit.pendingCount;
  }

  /**
   * run() (run.ts) once a slot is free. Rejects with RunnerError('QUEUE_FULL') when `maxQueue`
   * runs already wait; a run whose `signal` aborts while it waits rejects with the abort reason
   * and never starts.
   */
  run(
    file: string,
    args?: readonly string[],
    options?: RunOptions & { encoding: 'buffer' },
  ): Promise<RunOutput<Buffer>>;
  run(file: string, args?: readonly string[], options?: RunOptions): Promise<RunOutput<string>>;
  run(file: string, args: readonly string[] = [], options: RunOptions = {}): Promise<RunOutput> {
    const full = this.#limit.activeCount >= this.concurrency && this.#limit.pendingCount >= this.maxQueue;
    if (full)
      return Promise.reject(
        new RunnerError(
          'QUEUE_FULL',
          `Runner: ${this.#limit.activeCount} sandboxes running and ${this.#limit.pendingCount} waiting (maxQueue ${this.maxQueue})`,
        ),
      );
    return this.#limit(() => {
      options.signal?.throwIfAborted();
      return run(file, args, options);
    });
  }
}
