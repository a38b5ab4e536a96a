// @sbx/client: the sandboxee-side SDK.
export { Comms, type CommsOptions } from './comms.js';
export { SyncComms, defaultCommsFd, type SyncCommsOptions } from './sync-comms.js';
export type { Message } from './decoder.js';
export { Tag, tagName, DEFAULT_COMMS_FD, DEFAULT_MAX_MESSAGE_SIZE, HEADER_SIZE, USER_TAG_MAX, PROTOCOL_VERSION } from './tags.js';
export { SbxError, CommsError, type CommsErrorCode } from './errors.js';
