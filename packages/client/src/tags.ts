/** Comms wire tags (docs/wire-protocol.md, "Comms"). Mirrors native/comms/include/sbx/comms.h: keep them equal. */
export const Tag = {
  Bool: 0x80000001,
  Int8: 0x80000002,
  Uint8: 0x80000003,
  Int16: 0x80000004,
  Uint16: 0x80000005,
  Int32: 0x80000006,
  Uint32: 0x80000007,
  Int64: 0x80000008,
  Uint64: 0x80000009,
  String: 0x80000100,
  Bytes: 0x80000101,
  Proto2: 0x80000102,
  Barrier: 0x80000103,
  Version: 0x80000104,
  Status: 0x80000105,
  Msgpack: 0x80000180,
  Fd: 0x80000201,
  Creds: 0x80000202,
} as const;

/** User tags are 1 .. USER_TAG_MAX. */
export const USER_TAG_MAX = 0x7fffffff;
export const HEADER_SIZE = 12;
/** The sandboxee's comms fd unless $SBX_COMMS_FD names another. */
export const DEFAULT_COMMS_FD = 1023;
/** Default cap on an incoming message: 64 MiB. */
export const DEFAULT_MAX_MESSAGE_SIZE = 64 * 1024 * 1024;
export const PROTOCOL_VERSION = 1;

const names = new Map<number, string>(Object.entries(Tag).map(([k, v]) => [v, k]));

/** "Uint32 (0x80000007)" or "user tag 0x1234": used in error messages. */
export function tagName(tag: number): string {
  const hex = `0x${tag.toString(16).padStart(8, '0')}`;
  const name = names.get(tag);
  return name ? `${name} (${hex})` : tag <= USER_TAG_MAX ? `user tag ${hex}` : `unknown tag ${hex}`;
}
