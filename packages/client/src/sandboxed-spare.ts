// sandboxed-spare.ts: whether this process is a child of a sandboxed spare (custom-fork mode with
// startForkServer({ childPolicy })): sandboxed with the executor's child policy before its
// request came, so that its own later Client.sandboxMeHere() has nothing left to do.
let sandboxedAhead = false;

/** @internal forking-client.ts, once the spare's sandboxMeHere() and assignment succeeded. */
export function markSandboxedAhead(): void {
  sandboxedAhead = true;
}

/** True in a child that was sandboxed before its request (a sandboxed spare). */
export function wasSandboxedAhead(): boolean {
  return sandboxedAhead;
}
