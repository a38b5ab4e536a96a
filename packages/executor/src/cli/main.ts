// main.ts: `sbx <command>`. Commands are loaded lazily so that `sbx run` pays only for itself.
import { ExitCode } from './exit-codes.js';

const USAGE = `Usage: sbx <command> [options]

Commands:
  run [options] -- CMD [ARGS]   run a program in a sandbox (sbx run --help)
  learn [options] -- CMD [ARGS] write a policy from what CMD does (sbx learn --help)
  policy check|explain FILE     validate a policy file, or show what it compiles to (sbx policy --help)
  doctor                        report what this host allows (namespaces, seccomp, Landlock...)
  help                          this text

Exit codes of sbx run: the program's own on success; 124 timeout, 125 sbx failed,
126 setup error, 137 killed, 159 policy violation, 128+N killed by signal N, 2 bad usage.`;

export async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'run':
        process.exitCode = await (await import('./run.js')).run(rest);
        break;
      case 'policy':
        process.exitCode = await (await import('./policy.js')).policy(rest);
        break;
      case 'learn':
        process.exitCode = await (await import('./learn.js')).learn(rest);
        break;
      case 'doctor':
        process.exitCode = await (await import('./doctor.js')).doctor(rest);
        break;
      case 'help':
      case '--help':
      case '-h':
        console.log(USAGE);
        break;
      case undefined:
        console.error(USAGE);
        process.exitCode = ExitCode.USAGE;
        break;
      default:
        console.error(`sbx: unknown command "${command}"\n\n${USAGE}`);
        process.exitCode = ExitCode.USAGE;
    }
  } catch (err) {
    const e = err as Error & { code?: string };
    if (
      e.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' ||
      e.code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE' ||
      e.code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL' ||
      e.code === 'USAGE'
    ) {
      console.error(`sbx ${command}: ${e.message}\nTry: sbx ${command} --help`);
      process.exitCode = ExitCode.USAGE;
    } else {
      console.error(`sbx ${command ?? ''}: ${e.message}`);
      if (process.env.SBX_DEBUG) console.error(e.stack);
      process.exitCode = ExitCode.INTERNAL;
    }
  }
}
