#!/usr/bin/env node
// Learn a policy for a program from a run, prove it with an enforcing run, and show that it
// stops something the program did not do while learning (docs/policy-guide.md "Learning a policy").
//   node examples/learn/run.mjs
import { Executor, Sandbox, learnPolicyFile, loadPolicyFile, verifyPolicyFile } from '@sbx/executor';

const quiet = { stdio: ['ignore', 'ignore', 'inherit'] };
const md5sum = { path: '/usr/bin/md5sum', argv: ['md5sum', '/etc/passwd'], ...quiet };

const { doc, facts } = await learnPolicyFile(md5sum);
console.log(
  `learned: ${facts.syscalls.length} syscalls seen; allow ${doc.allow.length} names, argument rules on ${Object.keys(doc.allowWhen ?? {}).join(', ')}`,
);
console.log(`verify:  ${await verifyPolicyFile(doc, md5sum)}`);

// The same policy, another program: ls lists a directory, which md5sum never did.
const policy = loadPolicyFile(doc).build();
const ls = await new Sandbox(new Executor('/bin/ls', ['ls', '/'], quiet), policy).run();
console.log(`ls:      ${ls}`);
