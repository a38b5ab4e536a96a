// msgpackr's native extractor, loaded from its prebuilt file without msgpackr-extract's own
// lookup (msgpack-extract.ts). Each case runs in a fresh Node process: the module cache is
// per process.
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';

interface Loaded {
  native: boolean;
  extractCached: boolean;
  lookupLoaded: string[];
  roundTrip: boolean;
}

function loadIn(env: Record<string, string> = {}): Loaded {
  const script = `
    import { createRequire } from 'node:module';
    import { Client, SyncComms } from '@sbx/client';
    import { native } from '@sbx/client/internal';
    Client.prepare(); // loads the codec
    const req = createRequire(import.meta.url);
    const keys = Object.keys(req.cache);
    const extract = keys.find((k) => /msgpackr-extract[\\\\/]index\\.js$/.test(k));
    const msgpackr = req(keys.find((k) => /msgpackr[\\\\/]dist[\\\\/]node\\.cjs$/.test(k)));
    // A string-heavy message, the kind the extractor decodes
    const [a, b] = native().socketpair(false, false);
    const s = new SyncComms(a), t = new SyncComms(b);
    const value = { rows: Array.from({ length: 200 }, (_, i) => ({ name: 'name-' + i, text: 'é'.repeat(i % 40) })) };
    s.sendMessage(value);
    const back = t.recvMessage();
    console.log(JSON.stringify({
      native: msgpackr.isNativeAccelerationEnabled,
      extractCached: extract !== undefined && typeof req.cache[extract].exports.extractStrings === 'function',
      lookupLoaded: keys.filter((k) => /node-gyp-build|detect-libc/.test(k)),
      roundTrip: JSON.stringify(back) === JSON.stringify(value),
    }));`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
    encoding: 'utf8',
    env: { ...process.env, ...env },
  });
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  return JSON.parse(r.stdout) as Loaded;
}

describe('msgpackr-extract preload', () => {
  it('loads the prebuilt extractor without the prebuild lookup, and messages still decode', () => {
    const l = loadIn();
    expect(l.native).toBe(true);
    expect(l.extractCached).toBe(true);
    expect(l.lookupLoaded).toEqual([]);
    expect(l.roundTrip).toBe(true);
  });

  it("keeps msgpackr's switch: MSGPACKR_NATIVE_ACCELERATION_DISABLED=true loads no extractor", () => {
    const l = loadIn({ MSGPACKR_NATIVE_ACCELERATION_DISABLED: 'true' });
    expect(l.native).toBe(false);
    expect(l.extractCached).toBe(false);
    expect(l.roundTrip).toBe(true);
  });

  it("leaves a custom prebuild (MSGPACKR_EXTRACT_PREBUILD) to msgpackr-extract's own lookup", () => {
    const l = loadIn({ MSGPACKR_EXTRACT_PREBUILD: '/nonexistent-prebuild-dir' });
    expect(l.lookupLoaded.length).toBeGreaterThan(0);
    expect(l.roundTrip).toBe(true);
  });
});
