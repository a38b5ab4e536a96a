// doctor.ts: `sbx doctor [--json]`.
import { parseArgs } from 'node:util';
import { formatChecks, hostChecks } from '../doctor.js';

export async function doctor(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: { json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
    strict: true,
  });
  if (values.help) {
    console.log(
      'Usage: sbx doctor [--json]\nReports what this host allows sandboxes to use, with a fix for each missing piece.\nExit code 1 when a required piece is missing.',
    );
    return 0;
  }
  const checks = hostChecks();
  if (values.json) console.log(JSON.stringify(checks, null, 2));
  else console.log(formatChecks(checks));
  return checks.some((c) => c.required && !c.ok) ? 1 : 0;
}
