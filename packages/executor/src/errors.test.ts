import { describe, expect, it } from 'vitest';
import * as client from '@sbx/client';
import * as executor from './index.js';
import * as testing from './testing/index.js';
import { UsageError } from './cli/run.js';
import { SandboxSetupError } from './sandbox/sandbox.js';
import { IsolationError } from './isolation/isolation.js';

/** Any class, abstract or not, whatever its constructor's parameters. */
type AnyClass = abstract new (...args: never[]) => unknown;

/** Every error class either package exports, by name. */
function errorClasses(mod: Record<string, unknown>): Array<[string, AnyClass]> {
  return Object.entries(mod).filter(([name, v]) => typeof v === 'function' && /Error$/.test(name)) as Array<
    [string, AnyClass]
  >;
}

describe('one error base', () => {
  const all = [
    ...errorClasses(client),
    ...errorClasses(executor),
    ...errorClasses(testing),
    ['UsageError', UsageError],
    ['SandboxSetupError', SandboxSetupError],
    ['IsolationError', IsolationError],
  ] as Array<[string, AnyClass]>;

  it('every exported error class extends SbxError', () => {
    expect(all.length).toBeGreaterThanOrEqual(15);
    for (const [name, cls] of all) {
      if (cls === client.SbxError) continue;
      expect(cls.prototype instanceof client.SbxError, name).toBe(true);
    }
  });

  it('each instance has its class name and a stable code', () => {
    const samples: Error[] = [
      new executor.ExecutorError('BAD_PATH', 'm'),
      new executor.MountError('m'),
      new executor.PolicyError('INVALID_POLICY', ['a', 'b']),
      new executor.ElfError('m'),
      new executor.SpawnPoolError('m'),
      new executor.ForkServerError('PROTOCOL', 'm'),
      new executor.ForkServerHandleError('TIMEOUT', 'm'),
      new executor.LearnError('RUN_FAILED', 'm'),
      new client.NativeLoadError('m'),
      new UsageError('m'),
      new SandboxSetupError('m'),
      new IsolationError('m'),
    ];
    for (const e of samples) {
      expect(e).toBeInstanceOf(client.SbxError);
      expect(e.name).toBe(e.constructor.name);
      expect(typeof (e as client.SbxError).code).toBe('string');
      expect((e as client.SbxError).code).toMatch(/^[A-Z_]+$/);
    }
  });

  it('every error serializes with JSON.stringify ({ name, code, message, own fields }) and round-trips', () => {
    const samples: Error[] = [
      new executor.ExecutorError('BAD_PATH', 'm'),
      new executor.MountError('m'),
      new executor.PolicyError('INVALID_POLICY', ['a', 'b']),
      new executor.ElfError('m'),
      new executor.SpawnPoolError('m'),
      new executor.ForkServerError('PROTOCOL', 'm'),
      new executor.ForkServerHandleError('TIMEOUT', 'm'),
      new executor.LearnError('RUN_FAILED', 'm'),
      new executor.RunError('BAD_OPTION', 'm'),
      new executor.RunnerError('QUEUE_FULL', 'm'),
      new client.CommsError('IO', 'm', { errno: 5 }),
      new client.NativeLoadError('m'),
      new UsageError('m'),
      new SandboxSetupError('m'),
      new IsolationError('m'),
    ];
    for (const e of samples) {
      const json = JSON.parse(JSON.stringify(e));
      expect(json, e.name).toMatchObject({ name: e.name, code: (e as client.SbxError).code, message: e.message });
      expect(JSON.parse(JSON.stringify(json))).toEqual(json);
      expect(executor.errorToJSON(e)).toEqual(json);
    }
    expect(JSON.parse(JSON.stringify(samples[2]))).toMatchObject({ problems: ['a', 'b'] });
    expect(JSON.parse(JSON.stringify(samples[10]))).toMatchObject({ errno: 5 });
  });

  it('the package root re-exports the one SbxError of @sbx/client', () => {
    expect(executor.SbxError).toBe(client.SbxError);
  });
});
