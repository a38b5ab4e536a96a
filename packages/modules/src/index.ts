// @sbx/modules: call a module's functions in sandboxed children of a warm Node forkserver.
export {
  sandboxedModule,
  SandboxedModule,
  ModuleSession,
  type SandboxedModuleOptions,
  type ModuleMode,
  type ModuleApi,
  type ModuleCallTrace,
  type AnyFunction,
} from './sandboxed-module.js';
export { ModuleError, type ModuleErrorCode } from './errors.js';
export { DEFAULT_BUFFER_THRESHOLD, PassFd, type RemoteErrorInfo } from './wire.js';
