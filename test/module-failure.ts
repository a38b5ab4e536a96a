// module-failure.ts: the ModuleError a sandboxed module's call ended with, for the modules suites.
import { expect } from 'vitest';
import { ModuleError } from '@sbx/modules';

/** The ModuleError a call ended with (a value instead fails the test). */
export async function moduleFailure(p: Promise<unknown>): Promise<ModuleError> {
  const err = await p.then(
    (v) => {
      throw new Error(`expected a ModuleError, got the value ${JSON.stringify(v)}`);
    },
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ModuleError);
  return err as ModuleError;
}
