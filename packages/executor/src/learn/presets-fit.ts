// presets-fit.ts: the presets a learned policy may use: plain lists of syscalls with no argument
// rules, so using one allows nothing beyond its names (policy/presets.ts holds the lists).
import * as P from '../policy/presets.js';
import type { PolicyFilePreset } from '../policy-file/policy-file.js';

export const P_LISTS: Partial<Record<PolicyFilePreset, readonly string[]>> = {
  read: P.READ,
  write: P.WRITE,
  stat: P.STAT,
  access: P.ACCESS,
  exit: P.EXIT,
  time: P.TIME,
  sleep: P.SLEEP,
  'get-ids': P.GET_IDS,
  'get-pids': P.GET_PIDS,
  futex: P.FUTEX,
};
