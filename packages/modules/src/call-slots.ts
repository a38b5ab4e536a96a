// call-slots.ts: the limit on 'call' mode children alive at once (maxConcurrentCalls). A call
// takes a slot before it forks and gives it back once its child is gone; calls over the limit
// wait in the order they came, each until its own deadline.

/** A waiting call: resolved with its release function, or told that its deadline passed. */
interface Waiter {
  grant: (release: () => void) => void;
  timer: NodeJS.Timeout;
}

export class CallSlots {
  readonly max: number;
  #used = 0;
  readonly #queue: Waiter[] = [];

  constructor(max: number) {
    this.max = max;
  }

  /** Slots taken now (children alive or being forked for calls). */
  get used(): number {
    return this.#used;
  }

  /** Calls waiting for a slot. */
  get waiting(): number {
    return this.#queue.length;
  }

  /**
   * A slot: resolves with the function that gives it back (call it exactly once), or with null
   * when none came free within `waitMs`.
   */
  acquire(waitMs: number): Promise<(() => void) | null> | (() => void) {
    if (this.#used < this.max && this.#queue.length === 0) {
      this.#used++;
      return this.#releaser();
    }
    return new Promise((resolve) => {
      const waiter: Waiter = {
        grant: (release) => resolve(release),
        timer: setTimeout(
          () => {
            const i = this.#queue.indexOf(waiter);
            if (i >= 0) this.#queue.splice(i, 1);
            resolve(null);
          },
          Math.max(0, waitMs),
        ),
      };
      this.#queue.push(waiter);
    });
  }

  #releaser(): () => void {
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const next = this.#queue.shift();
      if (next) {
        // the slot passes straight to the first waiter: the count does not change
        clearTimeout(next.timer);
        next.grant(this.#releaser());
      } else {
        this.#used--;
      }
    };
  }
}
