// @sbx/client: the sandboxee-side SDK.
export { Comms, type CommsOptions, type UnixAddress } from './comms.js';
export { CommsListener, type ListenOptions } from './comms-listener.js';
export { STATUS_CODES, type Status, type StatusCodeName } from './status.js';
export { DEFAULT_QUEUE_LIMITS, type QueueLimits } from './inbox.js';
export { SyncComms, defaultCommsFd, type RecvBytesOptions, type SyncCommsOptions } from './sync-comms.js';
export type { Message } from './decoder.js';
export {
  Tag,
  tagName,
  DEFAULT_COMMS_FD,
  DEFAULT_MAX_MESSAGE_SIZE,
  HEADER_SIZE,
  USER_TAG_MAX,
  PROTOCOL_VERSION,
} from './tags.js';
export {
  SbxError,
  errorToJSON,
  CommsError,
  type CommsErrorCode,
  ClientError,
  type ClientErrorCode,
  BufferError,
  type BufferErrorCode,
} from './errors.js';
export { SharedBuffer, SharedBuffer as Buffer, type FromFdOptions, type RecvBufferOptions } from './buffer.js';
export {
  Client,
  defaultClientFd,
  type SandboxMeHereOptions,
  ClientTag,
  DEFAULT_CLIENT_FD,
  CLIENT_PROTOCOL_VERSION,
  CLIENT_HELLO_SIZE,
  CLIENT_HELLO_TSYNC,
  CLIENT_NO_FD,
} from './client.js';
export { FD_MAPPINGS_ENV, getMappedFd, hasMappedFd, mappedFds } from './named-fds.js';
export {
  LOG_FD_NAME,
  LOG_LEVELS,
  LOG_TAG,
  MAX_LOG_MESSAGE_BYTES,
  type LogLevel,
  encodeLogRecord,
  logToSupervisor,
  sendLogsToSupervisor,
} from './logs.js';
export { ForkingClient, FORKSERVER_NODE_FLAGS, MAX_SPARES } from './forking-client.js';
export { ForkError, type ForkErrorCode, NativeLoadError } from './errors.js';
