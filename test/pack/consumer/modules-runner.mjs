// @sbx/modules from the installed packages: imports modules-parse.mjs once in a warm forkserver,
// calls it in sandboxed children ('call' and 'session' mode), and expects a file read from a
// child to be a VIOLATION.
import { ModuleError, sandboxedModule } from '@sbx/modules';

const m = await sandboxedModule('./modules-parse.mjs', { from: import.meta.dirname, spares: 1 });
try {
  const parsed = await m.api.parse('a=1;b=two');
  if (parsed.a !== '1' || parsed.b !== 'two') throw new Error(`parse gave ${JSON.stringify(parsed)}`);
  const s = m.session();
  const again = await s.api.parse('c=3');
  s.close();
  if (again.c !== '3') throw new Error(`the session's parse gave ${JSON.stringify(again)}`);
  const err = await m.api.readSecret().then(
    () => null,
    (e) => e,
  );
  if (!(err instanceof ModuleError) || err.code !== 'VIOLATION')
    throw new Error(`readSecret: expected a VIOLATION, got ${err}`);
  console.log(
    `modules consumer: OK, parse and session answered, readSecret was a ${err.code} (${err.violation?.syscall})`,
  );
} finally {
  await m.close();
}
