/**
 * Pauses for waiters: jittered, and cut short by a wake-up.
 *
 * @module
 */

/** A pause of 0.5 to 1.5 times `ms`, so that waiters woken together spread out. */
export function jitter(ms: number): number {
  return ms * (0.5 + Math.random());
}

/**
 * A timer sleep that `wake` ends early; a wake while awake ends the next sleep at once. `sleep`
 * resolves `true` when woken, `false` when its time ran out.
 */
export class Sleeper {
  #resume: (() => void) | null = null;
  #woken = false;

  sleep(ms: number): Promise<boolean> {
    if (this.#woken) {
      this.#woken = false;
      return Promise.resolve(true);
    }
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#resume = null;
        resolve(false);
      }, ms);
      this.#resume = () => {
        clearTimeout(timer);
        resolve(true);
      };
    });
  }

  wake(): void {
    const resume = this.#resume;
    this.#resume = null;
    if (resume) resume();
    else this.#woken = true;
  }
}
