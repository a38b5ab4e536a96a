// buffer-pool.ts: SharedBuffer.create()'s spares (docs/architecture.md, "Shared-memory buffers").
// A spare is a memfd made ahead of the create() that takes it: sized, sealed against resizing,
// mapped, and its pages allocated in one call, so that none of that (nor the page faults of a
// fresh mapping) is on the hand-over's path. What keeps it safe:
//   - a spare was never handed out: made by this file, seen by nothing else (zero-filled, no data
//     of any earlier buffer: a closed buffer never comes back here);
//   - a spare is taken once (removed from its list before it is returned);
//   - spares belong to the process that made them: a forked child (custom-fork mode) shares the
//     parent's memfds, so it closes what it inherited at the fork and never hands one out.
// The automatic refill (a spare of the size just taken, after the current event-loop turn) never
// runs once this process installed a filter itself (sandboxMeHere()), where memfd_create may be
// forbidden; reserve() made before the filter is how such a process gets buffers after it.
import { native } from './native.js';

export interface MadeBuffer {
  fd: number;
  size: number;
  memory: ArrayBuffer;
}

/** Sizes the automatic refill keeps a spare of, at most (bigger buffers are made on demand). */
const AUTO_MAX_SIZE = 1 << 20;
/** Sizes whose pages are allocated ahead: allocating a bigger buffer's pages costs more than the
 *  faults of the few a hand-over touches, and freeing them makes its close() slower. */
const POPULATE_MAX_SIZE = 64 << 10;
/** How many sizes the automatic refill keeps a spare of (the least recently used goes first). */
const AUTO_SIZES = 4;

const spares = new Map<number, MadeBuffer[]>();
/** Sizes the automatic refill serves, least recently used first. */
const autoSizes: number[] = [];
let owner = process.pid;
let refillQueued = false;

/** Makes one buffer of `size` bytes now, its pages allocated (where the kernel can). */
export function makeBuffer(size: number): MadeBuffer {
  const made = native().bufferCreate(size);
  if (size > 0 && size <= POPULATE_MAX_SIZE) native().bufferPopulate(made.memory);
  return made;
}

/** A spare of exactly `size` bytes, taken out of the pool, or null. */
export function takeSpare(size: number): MadeBuffer | null {
  if (process.pid !== owner) dropInherited();
  const list = spares.get(size);
  const made = list?.shift() ?? null;
  if (list && list.length === 0) spares.delete(size);
  return made;
}

/** After a create() of `size`: keep a spare of it ready for the next one (automatic sizes only). */
export function noteCreated(size: number): void {
  if (size === 0 || size > AUTO_MAX_SIZE) return;
  const at = autoSizes.indexOf(size);
  if (at >= 0) autoSizes.splice(at, 1);
  autoSizes.push(size);
  while (autoSizes.length > AUTO_SIZES) {
    const old = autoSizes.shift()!;
    const list = spares.get(old);
    if (list && list.length > 0) closeAll(list.splice(0, 1)); // the automatic spare; reserved ones stay
    if (list?.length === 0) spares.delete(old);
  }
  if (refillQueued) return;
  refillQueued = true;
  setImmediate(refill).unref();
}

/** Makes `count` spares of `size` now (SharedBuffer.reserve()). */
export function reserve(size: number, count: number): void {
  if (process.pid !== owner) dropInherited();
  const list = spares.get(size) ?? [];
  spares.set(size, list);
  for (let i = 0; i < count; i++) list.push(makeBuffer(size));
}

/** How many spares of `size` are ready. */
export function spareCount(size: number): number {
  if (process.pid !== owner) dropInherited();
  return spares.get(size)?.length ?? 0;
}

/** In a forked child (forking-client.ts, at the fork): the parent's spares go at once, before
 *  any code of the child runs. Left open, a child's copy would show it what the parent later
 *  writes into that memfd for another receiver. */
export function dropInheritedSpares(): void {
  if (process.pid !== owner) dropInherited();
}

/** Closes every spare (SharedBuffer.releaseSpares()). */
export function releaseSpares(): void {
  for (const list of spares.values()) closeAll(list);
  spares.clear();
  autoSizes.length = 0;
}

function refill(): void {
  refillQueued = false;
  if (process.pid !== owner) dropInherited();
  if (native().clientState().filterInstalled) return;
  for (const size of autoSizes) {
    if ((spares.get(size)?.length ?? 0) > 0) continue;
    try {
      spares.set(size, [makeBuffer(size)]);
    } catch {
      return; // out of fds or memory: create() makes its buffers on demand meanwhile
    }
  }
}

function dropInherited(): void {
  // The parent's memfds: this child's copies of the fds and mappings go, the parent's stay.
  for (const list of spares.values()) closeAll(list);
  spares.clear();
  autoSizes.length = 0;
  owner = process.pid;
}

function closeAll(list: MadeBuffer[]): void {
  for (const made of list.splice(0)) {
    try {
      native().bufferClose(made.memory);
    } catch {
      // already released
    }
  }
}
