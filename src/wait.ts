/**
 * Waiting for a lock. A waiter sleeps until the lock directory changes: one shared
 * `Deno.watchFs` watcher per directory wakes it when a lock file is removed. Watchers can be
 * unavailable (no permission, out of inotify watches) and can miss events (queue overflow, a
 * holder that dies without removing its file), so a waiter also polls: with backoff from
 * {@linkcode POLL_START_MS} while no watcher runs, and every {@linkcode POLL_CAP_MS} as a safety
 * net while one does. Every sleep is a timer, so a waiter never spins a core.
 *
 * @module
 */

import { judge, readEntry } from "./entry.ts";
import { checkOwner, type LockRecord } from "./format.ts";
import { runAsync } from "./guard.ts";
import { jitter, Sleeper } from "./sleeper.ts";
import { joinPath, lockDirSync, lockFilename } from "./paths.ts";
import { acquireOp } from "./store.ts";

/** First polling pause while no watcher runs, in milliseconds. */
export const POLL_START_MS = 1;
/** Longest polling pause, and the safety-net poll while a watcher runs, in milliseconds. */
export const POLL_CAP_MS = 50;

/** How long to wait for a lock, and how to stop waiting. */
export interface WaitOptions {
  /**
   * How long to wait, in milliseconds. `0` tries once; the default, `Infinity`, waits until the
   * lock is free or `signal` fires.
   */
  timeoutMs?: number;
  /** Stops the wait: the call then rejects with `signal.reason`. */
  signal?: AbortSignal;
}

/**
 * Acquires the lock on `filePath`, waiting while another live owner holds it.
 *
 * Resolves `true` once the lock is taken (or is already held by the same unit and pid), and
 * `false` when `timeoutMs` passes first. Rejects with `signal.reason` when `signal` fires before.
 * A waiter wakes within milliseconds of the holder's release: it watches the lock directory with
 * `Deno.watchFs`, and polls with capped, jittered backoff where watching is unavailable or misses
 * an event. A lock whose holder died is taken over as stale, as {@linkcode acquire} does.
 *
 * Needs `--allow-read` and `--allow-write` for `manaDir` (reading also lets it watch the
 * directory), `--allow-run` to probe the holder and `--allow-sys=hostname` to record the host,
 * as {@linkcode acquire} does.
 *
 * @param manaDir The mana directory, e.g. `".mana"`.
 * @param unitId The unit (task) taking the lock.
 * @param pid The process that will hold the lock, usually `Deno.pid`.
 * @param filePath The path to lock, hashed exactly as given (see {@linkcode projectPath}).
 * @param options `timeoutMs` and `signal`.
 * @returns Whether the caller now holds the lock.
 * @throws {RangeError} When `timeoutMs` is negative or not a number.
 * @throws {LockPermissionError} When a permission is missing.
 * @throws {LockDirectoryError} When the lock directory is unusable.
 *
 * @example Waiting up to ten seconds
 * ```ts
 * import { acquireWait, release } from "@agentlock/core";
 *
 * if (await acquireWait(".mana", "1.1", Deno.pid, "src/main.ts", { timeoutMs: 10_000 })) {
 *   try {
 *     // ... edit src/main.ts ...
 *   } finally {
 *     await release(".mana", "1.1", Deno.pid, "src/main.ts");
 *   }
 * }
 * ```
 */
export async function acquireWait(
  manaDir: string,
  unitId: string,
  pid: number,
  filePath: string,
  options: WaitOptions = {},
): Promise<boolean> {
  checkOwner(unitId, pid);
  checkWaitOptions(options);
  options.signal?.throwIfAborted();
  const dir = lockDirSync(manaDir);
  const name = await lockFilename(filePath);
  return (await waitForLock(dir, name, unitId, pid, filePath, options)) !== null;
}

/**
 * Takes the lock `name` in `dir`, waiting as {@linkcode acquireWait} describes. Returns the record
 * now on disk, or `null` when the timeout passed.
 */
export async function waitForLock(
  dir: string,
  name: string,
  unitId: string,
  pid: number,
  filePath: string,
  options: WaitOptions,
): Promise<LockRecord | null> {
  const { timeoutMs = Infinity, signal } = options;
  signal?.throwIfAborted();
  const deadline = performance.now() + timeoutMs;
  const lockPath = joinPath(dir, name);
  const attempt = () => runAsync(acquireOp(dir, name, unitId, pid, filePath));
  const first = await attempt();
  if (first !== null || timeoutMs <= 0) return first;

  const sleeper = new Sleeper();
  const wake = () => sleeper.wake();
  const watch = watchLockFile(dir, name, wake, true);
  signal?.addEventListener("abort", wake);
  try {
    let pause = POLL_START_MS;
    let woken = false;
    // Attempt again at once: the holder may have released before the watch began.
    for (;;) {
      signal?.throwIfAborted();
      // Every waiter wakes on every change of the lock file; those that find it present again
      // go back to sleep after one lstat instead of a full attempt, so that a herd of waiters
      // does not slow the hand-off. Timer wake-ups always attempt: they find stale locks.
      const skip = woken && watch.active
        ? lockFileExists(lockPath)
        : isHeldByOther(lockPath, unitId, pid);
      const record = skip ? null : await attempt();
      if (record !== null) return record;
      const left = deadline - performance.now();
      if (left <= 0) return null;
      // A running watcher wakes us on release; the cap poll is its safety net.
      const base = watch.active ? POLL_CAP_MS : pause;
      woken = await sleeper.sleep(Math.min(jitter(base), left));
      pause = Math.min(pause * 2, POLL_CAP_MS);
    }
  } finally {
    signal?.removeEventListener("abort", wake);
    watch.close();
  }
}

/**
 * Whether another owner visibly holds the lock, so that a retry would fail. Looking first spares
 * each retry the temporary file an attempt writes, and the file events that wake other waiters.
 * When in doubt it says `false`, and the attempt decides (and reports any error).
 */
function isHeldByOther(lockPath: string, unitId: string, pid: number): boolean {
  try {
    const entry = readEntry(lockPath);
    if (entry.kind === "missing") return false;
    if (entry.kind === "lock" && entry.record.unitId === unitId && entry.record.pid === pid) {
      return false;
    }
    return judge(entry).state === "held";
  } catch {
    return false;
  }
}

function lockFileExists(lockPath: string): boolean {
  try {
    Deno.lstatSync(lockPath);
    return true;
  } catch {
    return false; // gone, or unreadable: the attempt decides
  }
}

// ---------------------------------------------------------------------------------------------
// The shared directory watcher.

/** A subscription to changes of one lock file. */
export interface LockWatch {
  /** Whether a watcher currently reports changes; when `false`, poll. */
  readonly active: boolean;
  /** Ends the subscription; the watcher closes when its last subscription ends. */
  close(): void;
}

// `ref`, `unref` and `next` exist on Deno's FsWatcher but are not in its type. `unref` applies
// to the pending read only, so it is called again after each `next()`.
interface RefableWatcher extends Deno.FsWatcher {
  next?(): Promise<IteratorResult<Deno.FsEvent>>;
  ref?(): void;
  unref?(): void;
}

interface DirWatch {
  watcher: RefableWatcher;
  listeners: Map<string, Set<() => void>>;
  /** Subscriptions that keep the process alive (waiters). Holders' monitors do not. */
  keepAlive: number;
  count: number;
  dead: boolean;
}

const dirWatches = new Map<string, DirWatch>();
let watching = true;

/**
 * Turns directory watching on or off for this process (on by default). Off, waiters only poll;
 * tests use it to exercise the fallback.
 */
export function setWatching(enabled: boolean): void {
  watching = enabled;
}

/** How many directory watchers are open in this process; tests check that none leak. */
export function openWatcherCount(): number {
  return dirWatches.size;
}

const INACTIVE: LockWatch = { active: false, close() {} };

/**
 * Calls `listener` when the lock file `name` in `dir` may have changed. `keepAlive` says whether
 * the subscription may keep the process alive; one that may not gets no watcher where watchers
 * cannot be unreferenced.
 */
export function watchLockFile(
  dir: string,
  name: string,
  listener: () => void,
  keepAlive: boolean,
): LockWatch {
  if (!watching) return INACTIVE;
  const watch = dirWatches.get(dir) ?? openDirWatch(dir);
  if (!watch || (!keepAlive && !canUnref(watch.watcher))) {
    if (watch && watch.count === 0) closeDirWatch(dir, watch);
    return INACTIVE;
  }
  let set = watch.listeners.get(name);
  if (!set) watch.listeners.set(name, set = new Set());
  // Wrapped so that one listener subscribed twice gets two independent subscriptions.
  const entry = () => listener();
  set.add(entry);
  watch.count++;
  if (keepAlive) watch.keepAlive++;
  updateRef(watch);
  let open = true;
  return {
    get active() {
      return open && !watch.dead;
    },
    close() {
      if (!open) return;
      open = false;
      set.delete(entry);
      if (set.size === 0 && watch.listeners.get(name) === set) watch.listeners.delete(name);
      watch.count--;
      if (keepAlive) watch.keepAlive--;
      if (watch.count === 0) closeDirWatch(dir, watch);
      else updateRef(watch);
    },
  };
}

function openDirWatch(dir: string): DirWatch | undefined {
  let watcher: RefableWatcher;
  try {
    watcher = Deno.watchFs(dir, { recursive: false });
  } catch {
    return undefined; // no permission or no watches left: subscribers poll
  }
  const watch: DirWatch = { watcher, listeners: new Map(), keepAlive: 0, count: 0, dead: false };
  dirWatches.set(dir, watch);
  pump(dir, watch);
  return watch;
}

function closeDirWatch(dir: string, watch: DirWatch): void {
  watch.dead = true;
  if (dirWatches.get(dir) === watch) dirWatches.delete(dir);
  try {
    watch.watcher.close();
  } catch {
    // Already closed by a failure.
  }
}

function canUnref(watcher: RefableWatcher): boolean {
  return typeof watcher.unref === "function" && typeof watcher.next === "function";
}

function updateRef(watch: DirWatch): void {
  if (!canUnref(watch.watcher)) return;
  try {
    if (watch.keepAlive > 0) watch.watcher.ref!();
    else watch.watcher.unref!();
  } catch {
    // No read is pending yet: `pump` applies the state when it starts one.
  }
}

async function pump(dir: string, watch: DirWatch): Promise<void> {
  const watcher = watch.watcher;
  const iterator: { next(): Promise<IteratorResult<Deno.FsEvent>> } = canUnref(watcher)
    ? { next: () => watcher.next!() }
    : watcher[Symbol.asyncIterator]();
  try {
    for (;;) {
      const pending = iterator.next();
      updateRef(watch); // each read starts referenced
      const result = await pending;
      if (result.done || dispatch(dir, watch, result.value)) break;
    }
  } catch {
    // The watcher failed or was closed: subscribers fall back to polling.
  } finally {
    const wasOpen = !watch.dead;
    closeDirWatch(dir, watch);
    if (wasOpen) {
      // Wake everyone, so that they notice and poll with backoff.
      for (const set of [...watch.listeners.values()]) for (const listener of [...set]) listener();
    }
  }
}

/** Wakes the subscribers an event concerns; returns `true` when the directory itself is gone. */
function dispatch(dir: string, watch: DirWatch, event: Deno.FsEvent): boolean {
  // Only a removal frees a lock (a replacement is a removal, then a creation). Creations,
  // writes and reads ("access", which waiters' own attempts cause) would only wake every waiter
  // of every process for nothing.
  if (event.kind === "access" || event.kind === "create" || event.kind === "modify") return false;
  // A removed or renamed lock directory is made again by the next acquirer, and this watcher
  // would not see it: end it, so that the next subscriber opens a fresh one.
  const dirName = baseName(dir.replace(/\/+$/, ""));
  if (
    (event.kind === "remove" || event.kind === "rename") &&
    event.paths.some((path) => baseName(path) === dirName)
  ) {
    return true;
  }
  const wakeAll = event.kind === "other" || event.paths.length === 0; // e.g. a rescan
  const woken = new Set<() => void>();
  for (const [name, set] of watch.listeners) {
    if (wakeAll || event.paths.some((path) => baseName(path) === name)) {
      for (const listener of set) woken.add(listener);
    }
  }
  for (const listener of woken) listener();
  return false;
}

function baseName(path: string): string {
  return path.slice(path.lastIndexOf("/") + 1);
}

// ---------------------------------------------------------------------------------------------
// Argument checks shared with the handles.

/** Throws when `timeoutMs` is not a non-negative number or `signal` is not an AbortSignal. */
export function checkWaitOptions(options: WaitOptions): void {
  const { timeoutMs, signal } = options;
  if (timeoutMs !== undefined && (typeof timeoutMs !== "number" || !(timeoutMs >= 0))) {
    throw new RangeError(`Invalid timeoutMs ${timeoutMs}: expected a number from 0 to Infinity`);
  }
  if (signal !== undefined && !(signal instanceof AbortSignal)) {
    throw new TypeError("signal must be an AbortSignal");
  }
}
