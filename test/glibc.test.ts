// The shipped native parts run on glibc 2.28 and later (issue 20): no symbol version above it.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
// @ts-expect-error: a plain .mjs script without types
import { checkFile, MAX } from './check-glibc.mjs';
import { nativeBuild } from './helpers.js';

type Checked = { highest: Record<string, string>; offending: string[]; dynamic: boolean };
const check = checkFile as (f: string) => Checked;

describe('glibc bound of the shipped binaries', () => {
  it('the addon needs nothing above glibc 2.28 / GCC 8 libstdc++', () => {
    const r = check(join(nativeBuild, 'Release', 'sbx_native.node'));
    expect(r.dynamic).toBe(true);
    expect(r.offending).toEqual([]);
    expect(MAX.GLIBC).toBe('2.28');
  });

  it('the forkserver is statically linked (needs no glibc at run time)', () => {
    const r = check(join(nativeBuild, 'forkserver', 'sbx-forkserver'));
    expect(r.dynamic).toBe(false);
  });

  it('the check catches a binary built against a newer glibc', () => {
    // python3 of this Debian 12 host needs GLIBC_2.34+ (pthread_create, __libc_start_main)
    const py = '/usr/bin/python3';
    const r = check(py);
    expect(r.offending.some((s) => /@GLIBC_2\.3[4-9]/.test(s))).toBe(true);
  });
});
