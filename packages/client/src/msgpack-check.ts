// msgpack-check.ts: a strict structural check of a Msgpack payload before msgpackr decodes it.
// msgpackr is lenient on purpose (0xc1 and its own extension types decode to objects of its own),
// while sbx's Msgpack messages are plain msgpack: one value, the format's types only, and of the
// extension types just the spec's timestamp (-1). Iterative, so nesting depth costs no stack.

/** Why `b` is not exactly one plain msgpack value, or null when it is. */
export function msgpackProblem(b: Uint8Array): string | null {
  let i = 0;
  let need = 1; // values still to read: msgpack is prefix-encoded, containers announce their counts
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const uint = (size: 1 | 2 | 4): number => {
    if (i + size > b.length) return -1;
    const v = size === 1 ? view.getUint8(i) : size === 2 ? view.getUint16(i) : view.getUint32(i);
    i += size;
    return v;
  };
  const skip = (n: number): boolean => {
    if (n < 0 || i + n > b.length) return false;
    i += n;
    return true;
  };
  while (need > 0) {
    // Every value takes at least a byte: a count beyond what is left cannot be honest.
    if (need > b.length - i) return `it ends inside a value (at byte ${i} of ${b.length})`;
    const at = i;
    const t = b[i++]!;
    need--;
    let ok = true;
    if (t <= 0x7f || t >= 0xe0 || t === 0xc0 || t === 0xc2 || t === 0xc3)
      continue; // ints, nil, bools
    else if (t <= 0x8f)
      need += 2 * (t & 0x0f); // fixmap
    else if (t <= 0x9f)
      need += t & 0x0f; // fixarray
    else if (t <= 0xbf)
      ok = skip(t & 0x1f); // fixstr
    else if (t === 0xc4 || t === 0xd9)
      ok = skip(uint(1)); // bin8, str8
    else if (t === 0xc5 || t === 0xda) ok = skip(uint(2));
    else if (t === 0xc6 || t === 0xdb) ok = skip(uint(4));
    else if (t === 0xca)
      ok = skip(4); // float32
    else if (t === 0xcb)
      ok = skip(8); // float64
    else if (t >= 0xcc && t <= 0xd3)
      ok = skip(1 << ((t - 0xcc) & 3)); // (u)int 8..64
    else if (t === 0xdc || t === 0xde) {
      const n = uint(2);
      ok = n >= 0;
      need += t === 0xde ? 2 * n : n;
    } else if (t === 0xdd || t === 0xdf) {
      const n = uint(4);
      ok = n >= 0;
      need += t === 0xdf ? 2 * n : n;
    } else if (t >= 0xd4 && t <= 0xd8) {
      const problem = extension(b, i, 1 << (t - 0xd4), at);
      if (problem) return problem;
      i += 1 + (1 << (t - 0xd4));
    } else if (t >= 0xc7 && t <= 0xc9) {
      const len = uint(t === 0xc7 ? 1 : t === 0xc8 ? 2 : 4);
      if (len < 0) return `it ends inside a value (at byte ${at} of ${b.length})`;
      const problem = extension(b, i, len, at);
      if (problem) return problem;
      i += 1 + len;
    } else {
      return `byte 0x${t.toString(16)} at offset ${at} is not a msgpack type (0xc1 is never used)`;
    }
    if (!ok) return `it ends inside a value (at byte ${at} of ${b.length})`;
  }
  if (i !== b.length) return `${b.length - i} bytes follow the value (one value per message)`;
  return null;
}

/** An extension value whose type byte is at `i` and `len` data bytes follow. */
function extension(b: Uint8Array, i: number, len: number, at: number): string | null {
  if (i + 1 + len > b.length) return `it ends inside a value (at byte ${at} of ${b.length})`;
  const type = (b[i]! << 24) >> 24;
  if (type !== -1)
    return `extension type ${type} at offset ${at} is not allowed (plain msgpack: only the timestamp, type -1)`;
  if (len !== 4 && len !== 8 && len !== 12) return `a timestamp at offset ${at} has ${len} bytes (4, 8 or 12)`;
  return null;
}
