/**
 * Lock handles: a lock held for the length of a block (`await using`), released once, and only
 * if it is still the very acquisition that took it.
 *
 * A lock names an owner (unit id and pid), not a handle: when the owner already holds the lock,
 * `lock()` succeeds at once, as `acquire` does, and the new handle shares that acquisition. This
 * process counts the handles of each acquisition, and the lock file is removed when the last of
 * them is released, so one handle's release never frees the lock under another.
 *
 * @module
 */

import { readEntry } from "./entry.ts";
import { LockError } from "./errors.ts";
import { checkOwner, type LockInfo, type LockRecord, toLockInfo } from "./format.ts";
import { type Op, runAsync, runSync } from "./guard.ts";
import { projectPath } from "./normalize.ts";
import { joinPath, lockDirSync, lockFilename, lockFilenameSync } from "./paths.ts";
import { acquireOp, isSameAcquisition, releaseTokenOp } from "./store.ts";
import { checkWaitOptions, waitForLock, type WaitOptions, watchLockFile } from "./wait.ts";

/** How often a held lock with an `onCompromised` callback is checked besides the watcher. */
const COMPROMISE_CHECK_MS = 1_000;

/**
 * What {@linkcode LockOptions.onCompromised} is told when a held lock is lost.
 *
 * @example Stopping work on a file whose lock was lost
 * ```ts
 * import { lock } from "@agentlock/core";
 *
 * const stop = new AbortController();
 * await using held = await lock(".mana", "src/main.ts", {
 *   unitId: "1.1",
 *   onCompromised: ({ reason, holder }) => {
 *     stop.abort(new Error(`lock ${reason}${holder ? ` by unit ${holder.unitId}` : ""}`));
 *   },
 * });
 * // ... pass stop.signal to the work on src/main.ts ...
 * ```
 */
export interface CompromisedEvent {
  /** The handle whose lock was lost. */
  lock: FileLock;
  /** `"removed"`: the lock file is gone. `"replaced"`: another lock file is in its place. */
  reason: "removed" | "replaced";
  /** Who holds the lock now, when it was replaced by a readable lock; else `null`. */
  holder: LockInfo | null;
}

/** Who takes a lock, and how; for {@linkcode lockSync}. */
export interface LockSyncOptions {
  /** The unit (task) taking the lock. */
  unitId: string;
  /** The process that will hold the lock. Default: `Deno.pid`. */
  pid?: number;
  /**
   * Lock the project-relative spelling of the path ({@linkcode projectPath}) instead of the path
   * exactly as given. Default `false`, which hashes as mana's Rust code does.
   */
  normalize?: boolean;
  /**
   * Called once if the lock file disappears or is replaced while the handle holds it, e.g. by
   * `clearAll` or a person deleting it. Detected by watching the lock directory, and by a check
   * every second; neither keeps the process alive.
   */
  onCompromised?: (event: CompromisedEvent) => void;
}

/** Who takes a lock, and how long to wait; for {@linkcode lock}. */
export interface LockOptions extends LockSyncOptions, WaitOptions {}

/**
 * A held lock. Release it with {@linkcode FileLock.release}, or let `await using` (or `using`)
 * release it at the end of the block, also when the block throws.
 *
 * @example
 * ```ts
 * import { lock } from "@agentlock/core";
 *
 * const held = await lock(".mana", "src/main.ts", { unitId: "1.1" });
 * try {
 *   // ... before writing, make sure nobody removed or took over the lock:
 *   if (!(await held.verify())) throw new Error("lost the lock on src/main.ts");
 * } finally {
 *   await held.release();
 * }
 * ```
 */
export interface FileLock extends AsyncDisposable, Disposable {
  /** The lock as taken: unit, pid, the path hashed, and when. */
  readonly info: LockInfo;
  /** The lock file, `<manaDir>/locks/<sha256>.lock`. */
  readonly lockPath: string;
  /** Whether this handle has been released. */
  readonly released: boolean;
  /**
   * Releases the lock. The lock file is removed when this is the last handle of this acquisition
   * in the process, and only if the file is still that acquisition: a lock someone else took over
   * is never removed. Releasing again does nothing.
   *
   * @returns `true` if the handle still held the lock, `false` if it was already released or the
   * lock had been lost.
   */
  release(): Promise<boolean>;
  /**
   * Synchronous {@linkcode FileLock.release}, usable in exit handlers.
   *
   * @returns As {@linkcode FileLock.release}.
   */
  releaseSync(): boolean;
  /**
   * Checks that the lock file on disk is still this acquisition: same owner, same token.
   *
   * @returns `false` once released, or when the lock file is gone or someone else's.
   */
  verify(): Promise<boolean>;
  /**
   * Synchronous {@linkcode FileLock.verify}.
   *
   * @returns As {@linkcode FileLock.verify}.
   */
  verifySync(): boolean;
}

/**
 * {@linkcode lock} waited `timeoutMs` and the lock was still held by someone else.
 *
 * @example
 * ```ts
 * import { lock, LockTimeoutError } from "@agentlock/core";
 *
 * try {
 *   await using held = await lock(".mana", "src/main.ts", { unitId: "1.1", timeoutMs: 5_000 });
 * } catch (error) {
 *   if (error instanceof LockTimeoutError) console.error(`busy: ${error.holder?.unitId}`);
 *   else throw error;
 * }
 * ```
 */
export class LockTimeoutError extends LockError {
  /** The path that could not be locked. */
  readonly filePath: string;
  /** The holder when the wait ended, if it could be read. */
  readonly holder: LockInfo | null;

  /**
   * Creates a timeout error.
   *
   * @param filePath The path that could not be locked.
   * @param timeoutMs How long the caller waited.
   * @param holder The holder when the wait ended, or `null`.
   */
  constructor(filePath: string, timeoutMs: number, holder: LockInfo | null) {
    const by = holder ? ` by unit ${holder.unitId} (pid ${holder.pid})` : "";
    super(
      `${filePath} is still locked${by} after ${timeoutMs} ms; wait longer, or ask its holder`,
    );
    this.name = "LockTimeoutError";
    this.filePath = filePath;
    this.holder = holder;
  }
}

/**
 * Locks `filePath` and returns a handle, waiting while another live owner holds it. Use it with
 * `await using`, so that the lock is released at the end of the block, also on a throw.
 *
 * If the same unit and pid already hold the lock, this returns at once with a handle that shares
 * that acquisition; the lock file stays until the last such handle is released.
 *
 * Needs `--allow-read` and `--allow-write` for `manaDir`, `--allow-run` to probe the holder and
 * `--allow-sys=hostname` to record the host.
 *
 * @param manaDir The mana directory, e.g. `".mana"`.
 * @param filePath The path to lock.
 * @param options The owner (`unitId`, `pid`), `timeoutMs`, `signal`, `normalize` and
 * `onCompromised`.
 * @returns The held lock.
 * @throws {LockTimeoutError} When `timeoutMs` passes first.
 * @throws {LockPermissionError} When a permission is missing.
 * Rejects with `signal.reason` when `signal` fires first.
 *
 * @example Holding a lock for a block
 * ```ts
 * import { lock } from "@agentlock/core";
 *
 * {
 *   await using held = await lock(".mana", "src/main.ts", { unitId: "1.1", timeoutMs: 30_000 });
 *   // ... edit src/main.ts; the lock is released when the block ends ...
 *   console.log(await held.verify()); // true
 * }
 * ```
 */
export async function lock(
  manaDir: string,
  filePath: string,
  options: LockOptions,
): Promise<FileLock> {
  return await openLock(manaDir, filePath, options);
}

/**
 * Tries once, synchronously, to lock `filePath`, and returns a handle or `null` when another
 * live owner holds it. Works with `using`.
 *
 * Needs the same permissions as {@linkcode lock}.
 *
 * @param manaDir The mana directory.
 * @param filePath The path to lock.
 * @param options The owner (`unitId`, `pid`), `normalize` and `onCompromised`.
 * @returns The held lock, or `null`.
 *
 * @example
 * ```ts
 * import { lockSync } from "@agentlock/core";
 *
 * using held = lockSync(".mana", "src/main.ts", { unitId: "1.1" });
 * if (held) {
 *   // ... edit src/main.ts ...
 * }
 * ```
 */
export function lockSync(
  manaDir: string,
  filePath: string,
  options: LockSyncOptions,
): FileLock | null {
  return openLockSync(manaDir, filePath, options);
}

/** {@linkcode lock} for sessions: `onRelease` hears when the handle is released. */
export async function openLock(
  manaDir: string,
  filePath: string,
  options: LockOptions,
  onRelease?: (lock: HeldLock) => void,
): Promise<HeldLock> {
  const { unitId, pid, path } = checkLockOptions(manaDir, filePath, options);
  checkWaitOptions(options);
  options.signal?.throwIfAborted();
  const dir = lockDirSync(manaDir);
  const name = await lockFilename(path);
  const record = await waitForLock(dir, name, unitId, pid, path, options);
  const lockPath = joinPath(dir, name);
  if (record === null) {
    throw new LockTimeoutError(path, options.timeoutMs ?? Infinity, holderOf(lockPath));
  }
  return new HeldLock(dir, name, record, options.onCompromised, onRelease);
}

/** {@linkcode lockSync} for sessions: `onRelease` hears when the handle is released. */
export function openLockSync(
  manaDir: string,
  filePath: string,
  options: LockSyncOptions,
  onRelease?: (lock: HeldLock) => void,
): HeldLock | null {
  const { unitId, pid, path } = checkLockOptions(manaDir, filePath, options);
  const dir = lockDirSync(manaDir);
  const name = lockFilenameSync(path);
  const record = runSync(acquireOp(dir, name, unitId, pid, path));
  return record && new HeldLock(dir, name, record, options.onCompromised, onRelease);
}

// Live handles per acquisition in this process, so that the last one removes the lock file.
const handleCounts = new Map<string, number>();

// Keyed by the lock name, not its path, so that two spellings of the mana directory share a count;
// the random token tells acquisitions apart.
function acquisitionKey(name: string, record: LockRecord): string {
  return [name, record.unitId, record.pid, record.token ?? "", record.lockedAt].join("\0");
}

/** The handle behind {@linkcode FileLock}. */
export class HeldLock implements FileLock {
  readonly info: LockInfo;
  readonly lockPath: string;
  #dir: string;
  #record: LockRecord;
  #key: string;
  #state: "held" | "releasing" | "released" = "held";
  #onRelease?: (lock: HeldLock) => void;
  #stopMonitor?: () => void;

  constructor(
    dir: string,
    name: string,
    record: LockRecord,
    onCompromised?: (event: CompromisedEvent) => void,
    onRelease?: (lock: HeldLock) => void,
  ) {
    this.#dir = dir;
    this.lockPath = joinPath(dir, name);
    this.#record = record;
    this.info = toLockInfo(record);
    this.#key = acquisitionKey(name, record);
    handleCounts.set(this.#key, (handleCounts.get(this.#key) ?? 0) + 1);
    this.#onRelease = onRelease;
    if (onCompromised) this.#monitor(name, onCompromised);
  }

  get released(): boolean {
    return this.#state === "released";
  }

  async release(): Promise<boolean> {
    if (!this.#begin()) return false;
    try {
      const result = await runAsync(this.#releaseOp(false));
      this.#end();
      return result;
    } catch (error) {
      this.#state = "held";
      throw error;
    }
  }

  releaseSync(): boolean {
    return this.#releaseSync(false);
  }

  /**
   * Releases for a process that is exiting: the lock file is removed even while other handles of
   * this process share the acquisition, since they end with the process.
   */
  releaseForExit(): boolean {
    return this.#releaseSync(true);
  }

  verify(): Promise<boolean> {
    try {
      return Promise.resolve(this.verifySync());
    } catch (error) {
      return Promise.reject(error);
    }
  }

  verifySync(): boolean {
    return this.#state === "held" && this.#isOnDisk();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.release();
  }

  [Symbol.dispose](): void {
    this.releaseSync();
  }

  #releaseSync(force: boolean): boolean {
    // An exiting process also finishes a release its async code had begun: that code never resumes.
    if (force ? this.#state === "released" : !this.#begin()) return false;
    this.#state = "releasing";
    try {
      const result = runSync(this.#releaseOp(force));
      this.#end();
      return result;
    } catch (error) {
      this.#state = "held";
      throw error;
    }
  }

  // Set synchronously, so that a second release while the first runs returns false, and the
  // monitor does not take our own removal for a compromise.
  #begin(): boolean {
    if (this.#state !== "held") return false;
    this.#state = "releasing";
    return true;
  }

  #end(): void {
    this.#state = "released";
    this.#stopMonitor?.();
    this.#onRelease?.(this);
  }

  *#releaseOp(force: boolean): Op<boolean> {
    const count = handleCounts.get(this.#key) ?? 0;
    if (count > 1 && !force) {
      const held = this.#isOnDisk();
      handleCounts.set(this.#key, count - 1);
      return held;
    }
    const removed = yield* releaseTokenOp(this.#dir, this.lockPath, this.#record);
    handleCounts.delete(this.#key);
    return removed;
  }

  #isOnDisk(): boolean {
    const entry = readEntry(this.lockPath);
    return entry.kind === "lock" && isSameAcquisition(entry.record, this.#record);
  }

  #monitor(name: string, onCompromised: (event: CompromisedEvent) => void): void {
    const check = () => this.#check(onCompromised);
    const watch = watchLockFile(this.#dir, name, check, false);
    const timer = setInterval(check, COMPROMISE_CHECK_MS);
    Deno.unrefTimer(timer);
    this.#stopMonitor = () => {
      this.#stopMonitor = undefined;
      watch.close();
      clearInterval(timer);
    };
  }

  #check(onCompromised: (event: CompromisedEvent) => void): void {
    if (this.#state !== "held") return;
    let entry;
    try {
      entry = readEntry(this.lockPath);
    } catch {
      return; // cannot tell now; the next check tries again
    }
    if (entry.kind === "lock" && isSameAcquisition(entry.record, this.#record)) return;
    this.#stopMonitor?.();
    const event: CompromisedEvent = {
      lock: this,
      reason: entry.kind === "missing" ? "removed" : "replaced",
      holder: entry.kind === "lock" ? toLockInfo(entry.record) : null,
    };
    try {
      onCompromised(event);
    } catch (error) {
      // Thrown from a watcher or timer callback: report it as any uncaught error.
      reportError(error);
    }
  }
}

function checkLockOptions(
  manaDir: string,
  filePath: string,
  options: LockSyncOptions,
): { unitId: string; pid: number; path: string } {
  if (typeof options !== "object" || options === null) {
    throw new TypeError("options must be an object with a unitId");
  }
  const { unitId, pid = Deno.pid, normalize = false, onCompromised } = options;
  checkOwner(unitId, pid);
  if (onCompromised !== undefined && typeof onCompromised !== "function") {
    throw new TypeError("onCompromised must be a function");
  }
  return { unitId, pid, path: normalize ? projectPath(manaDir, filePath) : filePath };
}

function holderOf(lockPath: string): LockInfo | null {
  try {
    const entry = readEntry(lockPath);
    return entry.kind === "lock" ? toLockInfo(entry.record) : null;
  } catch {
    return null;
  }
}
