// internal.ts: what @sbx/executor shares with this package (the native binding). Not public API.
export {
  native,
  nativeAddonPath,
  closeQuietly,
  type NativeBinding,
  type NativeWatcher,
  type MonitorEvent,
  type NativeErrnoError,
} from './native.js';
export { clientPackageRoot, nativeExecutablePath } from './native-location.js';
