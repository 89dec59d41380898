/**
 * Lock sessions: every lock a process takes through a session is released when the session
 * closes, and when the process ends: normal exit, `Deno.exit`, SIGINT, SIGTERM, SIGHUP, or an
 * uncaught error. No asynchronous work runs while a process ends, so that path releases with
 * synchronous calls. Only SIGKILL (or a power cut) leaves locks behind; the next acquirer takes
 * them over once it proves their process gone.
 *
 * @module
 */

import { LockError } from "./errors.ts";
import {
  type CompromisedEvent,
  type FileLock,
  type HeldLock,
  openLock,
  openLockSync,
} from "./handle.ts";
import { checkOwner } from "./format.ts";
import { checkWaitOptions, type WaitOptions } from "./wait.ts";

/** A signal on which a session releases its locks and the process exits with 128 + its number. */
export type ExitSignal = "SIGHUP" | "SIGINT" | "SIGQUIT" | "SIGTERM";

// The same numbers on Linux and macOS.
const SIGNAL_NUMBERS: Record<ExitSignal, number> = {
  SIGHUP: 1,
  SIGINT: 2,
  SIGQUIT: 3,
  SIGTERM: 15,
};

const DEFAULT_SIGNALS: readonly ExitSignal[] = ["SIGINT", "SIGTERM", "SIGHUP"];

/** Options of a {@linkcode LockSession}. */
export interface LockSessionOptions {
  /** The unit (task) that takes the session's locks. */
  unitId: string;
  /** The process that holds them. Default: `Deno.pid`. */
  pid?: number;
  /** Lock project-relative spellings of paths (see {@linkcode projectPath}). Default `false`. */
  normalize?: boolean;
  /**
   * Signals on which to release every lock and exit with code 128 + the signal number. Default
   * SIGINT, SIGTERM and SIGHUP. Pass `[]` to handle signals yourself; then close the session (or
   * call `Deno.exit`, which releases through the `unload` event) in your handler.
   */
  signals?: readonly ExitSignal[];
  /** Called when a lock held through the session is removed or replaced by someone else. */
  onCompromised?: (event: CompromisedEvent) => void;
}

/**
 * Tracks the locks a process takes through it and releases them all on
 * {@linkcode LockSession.close}, at the end of an `await using` block, and when the process ends
 * (see the module docs). A lock released through its own handle is forgotten by the session.
 *
 * While a session is open it listens to the `unload`, `error` and `unhandledrejection` events
 * and to its signals. An uncaught error releases the locks unless an earlier listener called
 * `preventDefault()`: a process that keeps running after an uncaught error should close its
 * sessions itself.
 *
 * Needs `--allow-read` and `--allow-write` for `manaDir`, `--allow-run` to probe holders and
 * `--allow-sys=hostname` to record the host. Signal listeners need no permission.
 *
 * @example
 * ```ts
 * import { LockSession } from "@agentlock/core";
 *
 * await using session = new LockSession(".mana", { unitId: "1.1" });
 * await session.lock("src/a.ts");
 * await session.lock("src/b.ts", { timeoutMs: 10_000 });
 * // ... edit both; Ctrl-C, an uncaught error or the end of the block releases them ...
 * ```
 */
export class LockSession implements AsyncDisposable, Disposable {
  /** The mana directory the session locks in. */
  readonly manaDir: string;
  /** The unit that takes the session's locks. */
  readonly unitId: string;
  /** The process that holds them. */
  readonly pid: number;
  #normalize: boolean;
  #signals: readonly ExitSignal[];
  #onCompromised?: (event: CompromisedEvent) => void;
  #held = new Set<HeldLock>();
  #closed = false;
  // Aborts waits still pending when the session closes.
  #closing = new AbortController();
  #forget = (lock: HeldLock) => this.#held.delete(lock);

  /**
   * Opens a session and starts listening for the end of the process.
   *
   * @param manaDir The mana directory, e.g. `".mana"`.
   * @param options The owner (`unitId`, `pid`), `normalize`, `signals` and `onCompromised`.
   */
  constructor(manaDir: string, options: LockSessionOptions) {
    if (typeof manaDir !== "string" || manaDir.length === 0) {
      throw new TypeError("manaDir must be a non-empty string");
    }
    if (typeof options !== "object" || options === null) {
      throw new TypeError("options must be an object with a unitId");
    }
    const { unitId, pid = Deno.pid, normalize = false, signals = DEFAULT_SIGNALS } = options;
    checkOwner(unitId, pid);
    for (const signal of signals) {
      if (!Object.hasOwn(SIGNAL_NUMBERS, signal)) {
        throw new TypeError(`Unsupported signal ${signal}: use SIGHUP, SIGINT, SIGQUIT or SIGTERM`);
      }
    }
    this.manaDir = manaDir;
    this.unitId = unitId;
    this.pid = pid;
    this.#normalize = normalize;
    this.#signals = [...signals];
    this.#onCompromised = options.onCompromised;
    openSessions.set(this, {
      signals: this.#signals,
      releaseForExit: () => this.#releaseForExit(),
    });
    try {
      updateHooks();
    } catch (error) {
      openSessions.delete(this);
      updateHooks();
      throw error;
    }
  }

  /** The locks held through this session, oldest first. */
  get locks(): FileLock[] {
    return [...this.#held];
  }

  /** Whether the session is closed. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Locks `filePath` for the session's unit, waiting while another owner holds it.
   *
   * @param filePath The path to lock.
   * @param options `timeoutMs` (default: wait until free) and `signal`.
   * @returns The held lock; the session releases it unless you do first.
   * @throws {LockTimeoutError} When `timeoutMs` passes first.
   * @throws {LockError} When the session is closed, or closes while waiting.
   *
   * @example
   * ```ts
   * import { LockSession } from "@agentlock/core";
   *
   * const session = new LockSession(".mana", { unitId: "1.1" });
   * const held = await session.lock("src/a.ts", { timeoutMs: 5_000 });
   * await held.release(); // or leave it to session.close()
   * await session.close();
   * ```
   */
  async lock(filePath: string, options: WaitOptions = {}): Promise<FileLock> {
    this.#checkOpen();
    checkWaitOptions(options);
    const signal = options.signal
      ? AbortSignal.any([options.signal, this.#closing.signal])
      : this.#closing.signal;
    const held = await openLock(
      this.manaDir,
      filePath,
      { ...this.#lockOptions(), timeoutMs: options.timeoutMs, signal },
      this.#forget,
    );
    return this.#track(held);
  }

  /**
   * Tries once, synchronously, to lock `filePath` for the session's unit.
   *
   * @param filePath The path to lock.
   * @returns The held lock, or `null` when another owner holds it.
   * @throws {LockError} When the session is closed.
   *
   * @example
   * ```ts
   * import { LockSession } from "@agentlock/core";
   *
   * using session = new LockSession(".mana", { unitId: "1.1" });
   * if (!session.lockSync("src/a.ts")) console.log("busy");
   * ```
   */
  lockSync(filePath: string): FileLock | null {
    this.#checkOpen();
    const held = openLockSync(this.manaDir, filePath, this.#lockOptions(), this.#forget);
    return held && this.#track(held);
  }

  /**
   * Releases every lock held through the session and stops listening for the end of the
   * process. Waits still pending reject. Closing again does nothing.
   *
   * @returns How many locks were still held and are now released.
   *
   * @example
   * ```ts
   * import { LockSession } from "@agentlock/core";
   *
   * const session = new LockSession(".mana", { unitId: "1.1" });
   * await session.lock("src/a.ts");
   * console.log(await session.close()); // 1
   * ```
   */
  async close(): Promise<number> {
    const results = [];
    for (const held of this.#shut()) results.push(await settle(() => held.release()));
    return count(results);
  }

  /**
   * Synchronous {@linkcode LockSession.close}.
   *
   * @returns How many locks were still held and are now released.
   *
   * @example
   * ```ts
   * import { LockSession } from "@agentlock/core";
   *
   * const session = new LockSession(".mana", { unitId: "1.1" });
   * session.lockSync("src/a.ts");
   * session.closeSync();
   * ```
   */
  closeSync(): number {
    const results = [];
    for (const held of this.#shut()) results.push(settleSync(() => held.releaseSync()));
    return count(results);
  }

  /** Closes the session: `await using session = new LockSession(...)`. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** Closes the session synchronously: `using session = new LockSession(...)`. */
  [Symbol.dispose](): void {
    this.closeSync();
  }

  // For a process that is ending: other handles sharing an acquisition end with it, so every lock
  // file goes (see HeldLock.releaseForExit).
  #releaseForExit(): void {
    for (const held of this.#shut()) {
      try {
        held.releaseForExit();
      } catch {
        // Keep releasing the others; a lock left behind is taken over once the process is gone.
      }
    }
  }

  #lockOptions() {
    return {
      unitId: this.unitId,
      pid: this.pid,
      normalize: this.#normalize,
      onCompromised: this.#onCompromised,
    };
  }

  #track(held: HeldLock): FileLock {
    if (this.#closed) {
      // The session closed while this lock was being taken: do not keep it.
      held.releaseSync();
      throw new LockError(`The lock session of unit ${this.unitId} was closed`);
    }
    this.#held.add(held);
    return held;
  }

  #checkOpen(): void {
    if (this.#closed) throw new LockError(`The lock session of unit ${this.unitId} is closed`);
  }

  /** Marks the session closed and returns the locks still to release. */
  #shut(): HeldLock[] {
    if (!this.#closed) {
      this.#closed = true;
      this.#closing.abort(new LockError(`The lock session of unit ${this.unitId} was closed`));
      openSessions.delete(this);
      updateHooks();
    }
    return [...this.#held];
  }
}

type Settled = { ok: true; value: boolean } | { ok: false; error: unknown };

// One lock that cannot be released must not keep the others: release all, then report.
async function settle(release: () => Promise<boolean>): Promise<Settled> {
  try {
    return { ok: true, value: await release() };
  } catch (error) {
    return { ok: false, error };
  }
}

function settleSync(release: () => boolean): Settled {
  try {
    return { ok: true, value: release() };
  } catch (error) {
    return { ok: false, error };
  }
}

/** How many releases succeeded; throws the first failure once all were tried. */
function count(results: Settled[]): number {
  for (const result of results) if (!result.ok) throw result.error;
  return results.filter((result) => result.ok && result.value).length;
}

// ---------------------------------------------------------------------------------------------
// Process hooks, shared by all open sessions.

interface SessionHooks {
  signals: readonly ExitSignal[];
  releaseForExit(): void;
}

const openSessions = new Map<LockSession, SessionHooks>();
const signalListeners = new Map<ExitSignal, () => void>();
let listening = false;

function releaseAll(): void {
  for (const hooks of [...openSessions.values()]) hooks.releaseForExit();
}

function onUnload(): void {
  releaseAll();
}

function onUncaught(event: Event): void {
  // An earlier listener that prevented the default keeps the process running: keep the locks.
  if (!event.defaultPrevented) releaseAll();
}

function onSignal(signal: ExitSignal): void {
  for (const hooks of [...openSessions.values()]) {
    if (hooks.signals.includes(signal)) hooks.releaseForExit();
  }
  // Sessions that do not handle this signal release through `unload`, which `Deno.exit` fires.
  Deno.exit(128 + SIGNAL_NUMBERS[signal]);
}

/** Adds and removes process listeners so that exactly the open sessions' needs are covered. */
function updateHooks(): void {
  const wanted = new Set<ExitSignal>();
  for (const hooks of openSessions.values()) for (const signal of hooks.signals) wanted.add(signal);
  for (const [signal, listener] of signalListeners) {
    if (!wanted.has(signal)) {
      Deno.removeSignalListener(signal, listener);
      signalListeners.delete(signal);
    }
  }
  for (const signal of wanted) {
    if (signalListeners.has(signal)) continue;
    const listener = () => onSignal(signal);
    Deno.addSignalListener(signal, listener);
    signalListeners.set(signal, listener);
  }
  const want = openSessions.size > 0;
  if (want === listening) return;
  listening = want;
  const method = want ? "addEventListener" : "removeEventListener";
  globalThis[method]("unload", onUnload);
  globalThis[method]("error", onUncaught);
  globalThis[method]("unhandledrejection", onUncaught);
}
