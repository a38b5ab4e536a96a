// layout-cache.test.ts: the layout cache gives each layout its own entry, the same bytes a fresh
// build gives, copies that a request cannot write back into, and a rebuild when a host path it
// looked at changed (the sandboxes themselves: test/layout-cache.test.ts).
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { OpList } from '../forkserver/protocol.js';
import { addLandlockOps } from './landlock.js';
import { appendLayoutOps, clearLayoutCache, layoutCacheStats } from './layout-cache.js';
import { addMountOps, type FsEntry } from './mounts.js';

const root = mkdtempSync(join(tmpdir(), 'sbx-layout-'));
mkdirSync(join(root, 'a'));
mkdirSync(join(root, 'b'));
const bind = (p: string, writable = false): FsEntry => ({ type: 'bind', outside: p, inside: p, writable });

function fresh(entries: FsEntry[], landlock: boolean): Buffer {
  const o = new OpList();
  addMountOps(o, entries);
  if (landlock) addLandlockOps(o, entries);
  return o.toBuffer();
}

function viaCache(entries: FsEntry[], landlock: boolean): Buffer {
  const o = new OpList();
  appendLayoutOps(o, entries, landlock);
  return o.toBuffer();
}

afterAll(() => rmSync(root, { recursive: true, force: true }));
beforeEach(() => clearLayoutCache());

describe('layout cache', () => {
  it('gives the bytes a fresh build gives, from the second request on without building', () => {
    const layout = [bind(join(root, 'a')), { type: 'tmpfs', inside: '/tmp', sizeBytes: 1 << 20 } as FsEntry];
    for (const landlock of [false, true]) {
      expect(viaCache(layout, landlock).equals(fresh(layout, landlock))).toBe(true);
      const before = layoutCacheStats();
      expect(viaCache(layout, landlock).equals(fresh(layout, landlock))).toBe(true);
      expect(layoutCacheStats().hits).toBe(before.hits + 1);
    }
    expect(layoutCacheStats().entries).toBe(2); // with and without Landlock: two entries
  });

  it('gives another layout its own entry, never the ops of the one before', () => {
    const a = viaCache([bind(join(root, 'a'))], false);
    const b = viaCache([bind(join(root, 'b'))], false);
    expect(layoutCacheStats()).toMatchObject({ entries: 2, hits: 0 });
    expect(b.equals(a)).toBe(false);
    expect(b.includes(Buffer.from(join(root, 'b')))).toBe(true);
    expect(b.includes(Buffer.from(join(root, 'a')))).toBe(false);
    // writable differs: another entry too
    viaCache([bind(join(root, 'a'), true)], false);
    expect(layoutCacheStats().entries).toBe(3);
  });

  it('hands out copies: what one request does to its op list never reaches the next', () => {
    const layout = [bind(join(root, 'a'))];
    const first = new OpList();
    appendLayoutOps(first, layout, false);
    const bytes = first.toBuffer();
    // Scribble over every buffer the first op list holds (as a buggy caller could)
    for (const part of (first as unknown as { parts: Buffer[] }).parts) part.fill(0xff);
    expect(first.toBuffer().equals(bytes)).toBe(false); // the scribbling took
    expect(viaCache(layout, false).equals(bytes)).toBe(true);
    expect(layoutCacheStats().hits).toBe(1);
  });

  it('rebuilds when a host path it looked at changed (a symlink replaced by a directory, and back)', () => {
    const link = join(root, 'link');
    symlinkSync('a', link);
    try {
      const layout = [bind(join(link, 'x'))];
      mkdirSync(join(root, 'a', 'x'), { recursive: true });
      const viaLink = viaCache(layout, false);
      expect(viaLink.equals(fresh(layout, false))).toBe(true);
      expect(viaLink.includes(Buffer.from(join(root, 'a', 'x')))).toBe(true); // resolved through the link
      unlinkSync(link);
      mkdirSync(join(link, 'x'), { recursive: true });
      const misses = layoutCacheStats().misses;
      const viaDir = viaCache(layout, false);
      expect(layoutCacheStats().misses).toBe(misses + 1);
      expect(viaDir.equals(fresh(layout, false))).toBe(true);
      expect(viaDir.equals(viaLink)).toBe(false);
    } finally {
      rmSync(link, { recursive: true, force: true });
    }
  });

  it('caches nothing for a layout that cannot be built, and keeps its error', () => {
    const missing = [bind(join(root, 'missing'))];
    expect(() => viaCache(missing, false)).toThrow(/does not exist/);
    expect(layoutCacheStats().entries).toBe(0);
    mkdirSync(join(root, 'missing'));
    expect(viaCache(missing, false).equals(fresh(missing, false))).toBe(true);
  });
});
