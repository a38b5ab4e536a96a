// table.ts: the monitor's learn table (native/addon/learn.h ParseLearnConfig): the filter the
// sandbox runs, the return value that means "learn", the fact limit, and per syscall number the
// arguments to record.
import { SECCOMP_RET_USER_NOTIF } from '../policy/bpf.js';
import { NOTIFY_DATA } from '../policy/compiler.js';
import { syscallNumber } from '../policy/syscalls.js';
import type { Arch } from '../policy/syscalls.js';
import { ARG_FACTS, MAX_FACTS } from './facts.js';

/** The filter's return for a call its rules left to defaultAction('notify'). */
export const LEARN_RET = (SECCOMP_RET_USER_NOTIF | NOTIFY_DATA.DEFAULT) >>> 0;

export function encodeLearnTable(filter: Uint8Array, arch: Arch, maxFacts = MAX_FACTS): Buffer {
  if (filter.length === 0 || filter.length % 8 !== 0)
    throw new TypeError('encodeLearnTable: the filter is a whole number of 8-byte instructions');
  const masks: number[] = [];
  for (const [name, spec] of Object.entries(ARG_FACTS)) {
    const nr = syscallNumber(arch, name);
    if (nr === undefined) continue;
    while (masks.length <= nr) masks.push(0);
    masks[nr] = spec.args.reduce((m, i) => m | (1 << i), 0);
  }
  const head = Buffer.alloc(20);
  head.writeUInt32LE(1, 0);
  head.writeUInt32LE(LEARN_RET, 4);
  head.writeUInt32LE(maxFacts, 8);
  head.writeUInt32LE(filter.length / 8, 12);
  head.writeUInt32LE(masks.length, 16);
  return Buffer.concat([head, Buffer.from(filter.buffer, filter.byteOffset, filter.byteLength), Buffer.from(masks)]);
}
