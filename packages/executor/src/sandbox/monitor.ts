// monitor.ts: routes the native monitor thread's reports to the sandbox they concern.
import { native, type MonitorEvent } from '@sbx/client/internal';

type Handler = (e: MonitorEvent) => void;

const handlers = new Map<number, Handler>();
let started = false;
let nextId = 1;

/**
 * Registers a sandbox's listener fd (taken) with the monitor; returns the id to unwatch with.
 * networkTable: the sandbox's network rules (policy/network.ts encodeNetworkTable), if any.
 * killSignal: what the monitor sends the sandbox's init (pidfd) on a violation: SIGKILL (9, a pid
 * namespace's init), or SIGTERM (15, landlock isolation's subreaper init, which kills the tree).
 * learnTable: learning mode (learn/table.ts encodeLearnTable), if any.
 * hookTable: notify hooks (notify-hooks.ts encodeHookTable), if any.
 */
export function watch(
  listenerFd: number,
  pidfd: number,
  execFd: number,
  handler: Handler,
  networkTable?: Buffer,
  killSignal = 9,
  learnTable?: Buffer,
  hookTable?: Buffer,
): number {
  const n = native();
  if (!started) {
    n.monitorStart((e) => handlers.get(e.id)?.(e));
    started = true;
  }
  const id = nextId++;
  handlers.set(id, handler);
  try {
    n.monitorWatch(id, listenerFd, pidfd, execFd, networkTable, killSignal, learnTable, hookTable);
  } catch (err) {
    handlers.delete(id);
    throw err;
  }
  return id;
}

/** Stops watching (closes the listener). Safe to call twice. */
export function unwatch(id: number): void {
  if (!handlers.delete(id)) return;
  native().monitorUnwatch(id);
}
