// The testing helper catches a violation and names the policy line (vitest not installed: the
// testing entry must not need it).
import { PolicyBuilder } from '@sbx/executor';
import { SandboxTestError, expectNoViolation, runSandboxed } from '@sbx/executor/testing';

const policy = new PolicyBuilder()
  .allowDynamicStartup()
  .allowWrite()
  .allowExit()
  .addLibrariesForBinary('/bin/ls')
  .build();
const clean = expectNoViolation(
  await runSandboxed(
    ['/bin/echo', 'x'],
    new PolicyBuilder()
      .allowDynamicStartup()
      .allowWrite()
      .allowExit()
      .allowSyscall('ioctl')
      .addLibrariesForBinary('/bin/echo')
      .build(),
  ),
);
try {
  expectNoViolation(await runSandboxed(['/bin/ls', '/'], policy));
  console.log('testing consumer: the violation was not caught');
  process.exitCode = 1;
} catch (err) {
  if (!(err instanceof SandboxTestError)) throw err;
  const v = err.result.violation;
  const ok =
    v !== undefined &&
    err.message.includes(`allow it with:   .allowSyscall('${v.syscall}')`) &&
    err.message.includes(`sandbox violation: ${v.syscall}(0x`);
  console.log(`testing consumer: clean run ${clean.status}; caught:\n${err.message}`);
  process.exitCode = ok ? 0 : 1;
}
