// internal.ts: what @sbx/executor shares with this package (the native binding). Not public API.
export { native, nativeCandidates, closeQuietly, type NativeBinding, type NativeWatcher, type MonitorEvent, type NativeErrnoError } from './native.js';
