/**
 * The lock store: acquire, release, check, list and clean locks in `<manaDir>/locks`.
 *
 * Two rules make it safe (the argument is in docs/protocol.md):
 * 1. A lock appears complete or not at all: it is written to a private temporary file and
 *    published with `link(2)`, which fails if the lock name exists.
 * 2. A lock file is removed only under the directory guard, after reading it again under that
 *    guard: by its owner, or because it is proven stale.
 *
 * @module
 */

import { fsError, LockDirectoryError } from "./errors.ts";
import {
  checkOwner,
  checkUnit,
  encodeLock,
  type LockInfo,
  type LockRecord,
  toLockInfo,
} from "./format.ts";
import type { ActiveLock } from "./format.ts";
import { judge, readEntry } from "./entry.ts";
import { type Op, runAsync, runSync, withGuard } from "./guard.ts";
import { isProcessAlive, ownerIdentity, type OwnerStatus } from "./liveness.ts";
import {
  forgetLockDir,
  joinPath,
  lockDirSync,
  lockFilename,
  lockFilenameSync,
  TEMP_SUFFIX,
} from "./paths.ts";

/** Attempts before `acquire` gives up on a lock that other processes keep taking and freeing. */
const MAX_ATTEMPTS = 32;

/** A lock file removed by a clean-up, and why. */
export interface RemovedLock {
  /** The lock file that was removed. */
  lockPath: string;
  /** Why it was removed, e.g. `"stale: pid 123 (unit 1.1) is gone"`. */
  reason: string;
  /** The locked path the file named, when it was a readable lock. */
  filePath?: string;
}

/** What {@linkcode pruneLocks} found in the lock directory. */
export interface PruneReport {
  /** Live locks, left in place. */
  live: ActiveLock[];
  /** Stale and corrupt lock files, and abandoned temporary files, that were removed. */
  removed: RemovedLock[];
  /** Entries left alone because they may not be removed, with the reason. */
  skipped: RemovedLock[];
}

/**
 * Acquires the lock on `filePath` for a unit's process.
 *
 * Returns `true` when the lock was taken or is already held by the same unit and pid, and `false`
 * when another live owner holds it. A lock whose owner is proven dead, or a lock file that is
 * corrupt, is taken over. Two callers can never both get `true` for one lock with different
 * owners.
 *
 * Needs `--allow-read` and `--allow-write` for `manaDir`; `--allow-run` to probe the owner of a
 * lock held by another process; `--allow-sys=hostname` to record the host. Under `--allow-all`
 * on Linux it also records the boot id and the process start time, which guard against a reused
 * pid (Deno reads `/proc` only then).
 *
 * @param manaDir The mana directory, e.g. `".mana"`.
 * @param unitId The unit (task) taking the lock.
 * @param pid The process that will hold the lock, usually `Deno.pid`.
 * @param filePath The path to lock, hashed exactly as given.
 * @returns Whether the caller now holds the lock.
 * @throws {LockPermissionError} When a permission is missing; nothing is removed.
 * @throws {LockDirectoryError} When the lock directory is unusable.
 *
 * @example
 * ```ts
 * import { acquire, release } from "@agentlock/core";
 *
 * if (await acquire(".mana", "1.1", Deno.pid, "src/main.ts")) {
 *   try {
 *     // ... edit src/main.ts ...
 *   } finally {
 *     await release(".mana", "1.1", Deno.pid, "src/main.ts");
 *   }
 * }
 * ```
 */
export async function acquire(
  manaDir: string,
  unitId: string,
  pid: number,
  filePath: string,
): Promise<boolean> {
  checkOwner(unitId, pid);
  const name = await lockFilename(filePath);
  return (await runAsync(acquireOp(lockDirSync(manaDir), name, unitId, pid, filePath))) !== null;
}

/**
 * Synchronous {@linkcode acquire}, for code that cannot await.
 *
 * Needs the same permissions as {@linkcode acquire}.
 *
 * @param manaDir The mana directory.
 * @param unitId The unit (task) taking the lock.
 * @param pid The process that will hold the lock.
 * @param filePath The path to lock.
 * @returns Whether the caller now holds the lock.
 *
 * @example
 * ```ts
 * import { acquireSync, releaseSync } from "@agentlock/core";
 *
 * if (acquireSync(".mana", "1.1", Deno.pid, "src/main.ts")) {
 *   releaseSync(".mana", "1.1", Deno.pid, "src/main.ts");
 * }
 * ```
 */
export function acquireSync(
  manaDir: string,
  unitId: string,
  pid: number,
  filePath: string,
): boolean {
  checkOwner(unitId, pid);
  const name = lockFilenameSync(filePath);
  return runSync(acquireOp(lockDirSync(manaDir), name, unitId, pid, filePath)) !== null;
}

/**
 * Releases the lock on `filePath` if the given unit and pid hold it. A lock held by anyone else
 * is never removed.
 *
 * Needs `--allow-read` and `--allow-write` for `manaDir`.
 *
 * @param manaDir The mana directory.
 * @param unitId The unit that holds the lock.
 * @param pid The process that holds the lock.
 * @param filePath The locked path.
 * @returns `true` if the lock was held by that owner and is now removed, else `false`.
 *
 * @example
 * ```ts
 * import { acquire, release } from "@agentlock/core";
 *
 * await acquire(".mana", "1.1", Deno.pid, "src/main.ts");
 * console.log(await release(".mana", "1.1", Deno.pid, "src/main.ts")); // true
 * ```
 */
export async function release(
  manaDir: string,
  unitId: string,
  pid: number,
  filePath: string,
): Promise<boolean> {
  checkOwner(unitId, pid);
  const name = await lockFilename(filePath);
  return runAsync(releaseOp(lockDirSync(manaDir), name, unitId, pid));
}

/**
 * Synchronous {@linkcode release}, usable in exit handlers.
 *
 * Needs `--allow-read` and `--allow-write` for `manaDir`.
 *
 * @param manaDir The mana directory.
 * @param unitId The unit that holds the lock.
 * @param pid The process that holds the lock.
 * @param filePath The locked path.
 * @returns `true` if the lock was held by that owner and is now removed, else `false`.
 *
 * @example
 * ```ts
 * import { acquireSync, releaseSync } from "@agentlock/core";
 *
 * acquireSync(".mana", "1.1", Deno.pid, "src/main.ts");
 * releaseSync(".mana", "1.1", Deno.pid, "src/main.ts");
 * ```
 */
export function releaseSync(
  manaDir: string,
  unitId: string,
  pid: number,
  filePath: string,
): boolean {
  checkOwner(unitId, pid);
  const name = lockFilenameSync(filePath);
  return runSync(releaseOp(lockDirSync(manaDir), name, unitId, pid));
}

/**
 * Returns the live holder of the lock on `filePath`, or `null` when it is free. A stale or
 * corrupt lock file found on the way is removed. A lock file that cannot be read yet because it
 * is younger than a few seconds may be in the middle of being written: it is left in place and
 * reported as `null`, but `acquire` will not take it.
 *
 * Needs `--allow-read` and `--allow-write` for `manaDir` and `--allow-run` to probe the holder.
 *
 * @param manaDir The mana directory.
 * @param filePath The path to check.
 * @returns The holder's lock information, or `null`.
 *
 * @example
 * ```ts
 * import { checkLock } from "@agentlock/core";
 *
 * const holder = await checkLock(".mana", "src/main.ts");
 * if (holder) console.log(`held by unit ${holder.unitId} (pid ${holder.pid})`);
 * ```
 */
export async function checkLock(manaDir: string, filePath: string): Promise<LockInfo | null> {
  const name = await lockFilename(filePath);
  return runAsync(checkOp(lockDirSync(manaDir), name));
}

/**
 * Synchronous {@linkcode checkLock}, for write hooks that cannot await.
 *
 * Needs the same permissions as {@linkcode checkLock}.
 *
 * @param manaDir The mana directory.
 * @param filePath The path to check.
 * @returns The holder's lock information, or `null`.
 *
 * @example
 * ```ts
 * import { checkLockSync } from "@agentlock/core";
 *
 * console.log(checkLockSync(".mana", "src/main.ts")?.unitId ?? "free");
 * ```
 */
export function checkLockSync(manaDir: string, filePath: string): LockInfo | null {
  const name = lockFilenameSync(filePath);
  return runSync(checkOp(lockDirSync(manaDir), name));
}

/**
 * Lists the live locks, removing stale and corrupt lock files on the way. Locks held on another
 * host are listed as live: they cannot be checked from here.
 *
 * Needs `--allow-read` and `--allow-write` for `manaDir` and `--allow-run` to probe holders.
 *
 * @param manaDir The mana directory.
 * @returns The live locks, in directory order.
 *
 * @example
 * ```ts
 * import { listLocks } from "@agentlock/core";
 *
 * for (const { info } of await listLocks(".mana")) {
 *   console.log(info.unitId, info.pid, info.filePath);
 * }
 * ```
 */
export async function listLocks(manaDir: string): Promise<ActiveLock[]> {
  return (await runAsync(scanOp(lockDirSync(manaDir), false))).live;
}

/**
 * Removes stale and corrupt lock files, and temporary files left by writers that died, and says
 * what it removed and why. Live locks and entries it may not remove (a directory where a lock file
 * belongs, a young unreadable file) are reported, not touched.
 *
 * Needs `--allow-read` and `--allow-write` for `manaDir` and `--allow-run` to probe holders.
 *
 * @param manaDir The mana directory.
 * @returns What was found and done.
 *
 * @example
 * ```ts
 * import { pruneLocks } from "@agentlock/core";
 *
 * const report = await pruneLocks(".mana");
 * for (const { lockPath, reason } of report.removed) console.log(`removed ${lockPath}: ${reason}`);
 * ```
 */
export function pruneLocks(manaDir: string): Promise<PruneReport> {
  return runAsync(scanOp(lockDirSync(manaDir), true));
}

/**
 * Releases every lock held by a unit, whichever process holds it, and cleans stale locks on the
 * way. This revokes the locks of that unit's processes: use it when the unit has finished or its
 * agent was stopped.
 *
 * Needs `--allow-read` and `--allow-write` for `manaDir` and `--allow-run` to probe holders.
 *
 * @param manaDir The mana directory.
 * @param unitId The unit whose locks to release.
 * @returns How many locks were released.
 *
 * @example
 * ```ts
 * import { releaseAllForUnit } from "@agentlock/core";
 *
 * const released = await releaseAllForUnit(".mana", "1.1");
 * console.log(`released ${released} locks`);
 * ```
 */
export function releaseAllForUnit(manaDir: string, unitId: string): Promise<number> {
  checkUnit(unitId);
  return runAsync(releaseUnitOp(lockDirSync(manaDir), unitId));
}

/**
 * Synchronous {@linkcode releaseAllForUnit}, usable in exit handlers.
 *
 * Needs the same permissions as {@linkcode releaseAllForUnit}.
 *
 * @param manaDir The mana directory.
 * @param unitId The unit whose locks to release.
 * @returns How many locks were released.
 *
 * @example
 * ```ts
 * import { releaseAllForUnitSync } from "@agentlock/core";
 *
 * globalThis.addEventListener("unload", () => releaseAllForUnitSync(".mana", "1.1"));
 * ```
 */
export function releaseAllForUnitSync(manaDir: string, unitId: string): number {
  checkUnit(unitId);
  return runSync(releaseUnitOp(lockDirSync(manaDir), unitId));
}

/**
 * Removes every lock, live or not. Holders are not told: use it only when no agent runs.
 *
 * Needs `--allow-read` and `--allow-write` for `manaDir` and `--allow-run` to probe holders.
 *
 * @param manaDir The mana directory.
 * @returns How many live locks were removed (stale ones are cleaned too, as in mana).
 *
 * @example
 * ```ts
 * import { clearAll } from "@agentlock/core";
 *
 * console.log(`cleared ${await clearAll(".mana")} locks`);
 * ```
 */
export function clearAll(manaDir: string): Promise<number> {
  return runAsync(clearOp(lockDirSync(manaDir)));
}

// ---------------------------------------------------------------------------------------------
// Operations, written once for the sync and async entry points (see guard.ts).

/**
 * Takes the lock, or finds it already held by the same owner. Returns the record now on disk, or
 * `null` when another live owner holds it.
 */
export function* acquireOp(
  dir: string,
  name: string,
  unitId: string,
  pid: number,
  filePath: string,
): Op<LockRecord | null> {
  const lockPath = joinPath(dir, name);
  const record = newRecord(unitId, pid, filePath);
  const bytes = encodeLock(record);
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    if (publish(dir, name, bytes, record)) return record;
    const entry = readEntry(lockPath);
    if (entry.kind === "missing") continue; // released in between: try again
    if (entry.kind === "lock" && isOwner(entry.record, unitId, pid)) return entry.record;
    const verdict = judge(entry);
    if (verdict.state === "held") return null;
    if (verdict.state === "blocked") {
      throw new LockDirectoryError(`${lockPath} is ${verdict.reason}`);
    }
    yield* withGuard(dir, () => removeIfStale(lockPath));
  }
  return null;
}

function* releaseOp(dir: string, name: string, unitId: string, pid: number): Op<boolean> {
  const lockPath = joinPath(dir, name);
  const isCaller = (record: LockRecord) => isOwner(record, unitId, pid);
  return yield* withGuard(dir, () => {
    if (isOwnPublished(lockPath, isCaller)) return remove(lockPath);
    const entry = readEntry(lockPath);
    if (entry.kind !== "lock" || !isOwner(entry.record, unitId, pid)) return false;
    return remove(lockPath);
  });
}

/**
 * Removes the lock file at `lockPath` only if it is the very acquisition that wrote `token` (same
 * owner and token). Handles use it so that a lock taken over and re-taken is never removed.
 */
export function* releaseTokenOp(dir: string, lockPath: string, record: LockRecord): Op<boolean> {
  const isThat = (published: LockRecord) => isSameAcquisition(published, record);
  return yield* withGuard(dir, () => {
    if (isOwnPublished(lockPath, isThat)) return remove(lockPath);
    const entry = readEntry(lockPath);
    if (entry.kind !== "lock" || !isSameAcquisition(entry.record, record)) return false;
    return remove(lockPath);
  });
}

/** Whether two records are the same acquisition: same owner, and same token where both have one. */
export function isSameAcquisition(a: LockRecord, b: LockRecord): boolean {
  return a.unitId === b.unitId && a.pid === b.pid && a.token === b.token &&
    a.lockedAt === b.lockedAt;
}

function* checkOp(dir: string, name: string): Op<LockInfo | null> {
  const lockPath = joinPath(dir, name);
  const entry = readEntry(lockPath);
  if (entry.kind === "missing") return null;
  const verdict = judge(entry);
  if (verdict.state === "blocked") throw new LockDirectoryError(`${lockPath} is ${verdict.reason}`);
  if (verdict.state === "held") return verdict.record ? toLockInfo(verdict.record) : null;
  const left = yield* withGuard(dir, () => removeIfStale(lockPath));
  return left ? toLockInfo(left) : null;
}

function* scanOp(dir: string, prune: boolean): Op<PruneReport> {
  const report: PruneReport = { live: [], removed: [], skipped: [] };
  const stale: string[] = [];
  const cache = new Map<string, OwnerStatus>();
  for (const listed of readLockDir(dir)) {
    const { name } = listed;
    const lockPath = joinPath(dir, name);
    if (!name.endsWith(".lock")) {
      if (prune && isAbandonedTemp(name)) removeTemp(lockPath, report);
      continue;
    }
    const entry = readEntry(lockPath, listed);
    if (entry.kind === "missing") continue;
    const verdict = judge(entry, cache);
    if (verdict.state === "stale") stale.push(lockPath);
    else if (verdict.state === "held" && verdict.record) {
      report.live.push({ info: toLockInfo(verdict.record), lockPath });
    } else report.skipped.push({ lockPath, reason: verdict.reason ?? "left alone" });
  }
  if (stale.length > 0) {
    yield* withGuard(dir, () => {
      for (const lockPath of stale) {
        const removed: RemovedLock[] = [];
        const left = removeIfStale(lockPath, removed);
        report.removed.push(...removed);
        if (left) report.live.push({ info: toLockInfo(left), lockPath });
      }
    });
  }
  return report;
}

function* releaseUnitOp(dir: string, unitId: string): Op<number> {
  const { live } = yield* scanOp(dir, false);
  const mine = live.filter((lock) => lock.info.unitId === unitId);
  if (mine.length === 0) return 0;
  return yield* withGuard(dir, () => {
    let released = 0;
    for (const { lockPath } of mine) {
      const entry = readEntry(lockPath);
      if (entry.kind === "lock" && entry.record.unitId === unitId && remove(lockPath)) released++;
    }
    return released;
  });
}

function* clearOp(dir: string): Op<number> {
  const { live } = yield* scanOp(dir, false);
  if (live.length === 0) return 0;
  return yield* withGuard(dir, () => {
    let cleared = 0;
    for (const { lockPath } of live) {
      if (readEntry(lockPath).kind === "lock" && remove(lockPath)) cleared++;
    }
    return cleared;
  });
}

// ---------------------------------------------------------------------------------------------
// Helpers

/**
 * Publishes a complete lock file under `name` if that name is free. The content goes to a private
 * temporary file first; `link(2)` then gives it the lock name atomically, or fails if it exists.
 *
 * When this process is the owner, the temporary name stays linked while the lock is held: as long
 * as it exists, no other file can have its inode, so finding that inode at the lock name proves
 * the lock file is the one published here, without reading it (see {@linkcode isOwnPublished}).
 * The temporary name is fixed per lock and per thread, because a new name per call costs the file
 * system a new directory entry each time.
 */
function publish(
  dir: string,
  name: string,
  bytes: Uint8Array,
  record: LockRecord,
  retries = 2,
): boolean {
  const lockPath = joinPath(dir, name);
  const tempPath = joinPath(dir, `.${name}.${Deno.pid}.${THREAD_ID}${TEMP_SUFFIX}`);
  try {
    Deno.writeFileSync(tempPath, bytes, { createNew: true, mode: 0o644 });
  } catch (error) {
    if (retries === 0) throw fsError("write", tempPath, error);
    if (error instanceof Deno.errors.AlreadyExists) {
      // Still linked to a lock of ours: held and now acquired again by its owner, or removed by
      // someone else. Either way the next release reads the lock file instead.
      forgetPublished(lockPath);
      removeQuietly(tempPath);
      return publish(dir, name, bytes, record, retries - 1);
    }
    removeQuietly(tempPath); // a full disk can leave a partial file behind
    if (!(error instanceof Deno.errors.NotFound)) throw fsError("write", tempPath, error);
    // The lock directory was removed under us: make it again.
    forgetLockDir(dir);
    Deno.mkdirSync(dir, { recursive: true });
    return publish(dir, name, bytes, record, retries - 1);
  }
  try {
    Deno.linkSync(tempPath, lockPath);
  } catch (error) {
    removeQuietly(tempPath);
    if (error instanceof Deno.errors.AlreadyExists) return false;
    if (
      error instanceof Deno.errors.PermissionDenied || error instanceof Deno.errors.NotSupported
    ) {
      throw new LockDirectoryError(
        `Cannot link ${tempPath} to ${lockPath}: the file system must support hard links ` +
          `(Linux and macOS local disks do); move the mana directory to such a disk`,
        { cause: error },
      );
    }
    throw fsError("publish", lockPath, error);
  }
  if (record.pid === Deno.pid) published.set(lockPath, { tempPath, record });
  else removeQuietly(tempPath); // the owner is another process: this one may exit before it
  return true;
}

/** Identifies this thread's temporary files; the pid alone is shared by a process's workers. */
const THREAD_ID = randomId().slice(0, 8);

/** Locks this thread published and still links under their temporary name. */
const published = new Map<string, { tempPath: string; record: LockRecord }>();

/**
 * Under the guard: `true` when the lock file is the one this thread published for an owner that
 * `matches`, proven by its inode being that of the temporary name still linked here. `false` when
 * it cannot be proven that way; the caller then reads the file.
 */
function isOwnPublished(lockPath: string, matches: (record: LockRecord) => boolean): boolean {
  const own = published.get(lockPath);
  if (!own || !matches(own.record)) return false;
  try {
    const lock = Deno.lstatSync(lockPath);
    const temp = Deno.lstatSync(own.tempPath);
    if (lock.ino !== null && lock.ino === temp.ino && lock.dev === temp.dev) return true;
  } catch {
    // Either name is gone.
  }
  forgetPublished(lockPath); // ours was removed or replaced by someone else
  return false;
}

function forgetPublished(lockPath: string): void {
  const own = published.get(lockPath);
  if (!own) return;
  published.delete(lockPath);
  removeQuietly(own.tempPath);
}

/**
 * Under the guard: reads the entry again and removes it if it is still stale. Returns the record
 * of a lock that turned out to be held, else `undefined`.
 */
function removeIfStale(lockPath: string, removed?: RemovedLock[]): LockRecord | undefined {
  const entry = readEntry(lockPath);
  if (entry.kind === "missing") return undefined;
  const verdict = judge(entry);
  if (verdict.state !== "stale") return verdict.state === "held" ? verdict.record : undefined;
  if (remove(lockPath)) {
    const filePath = entry.kind === "lock" ? entry.record.filePath : undefined;
    removed?.push(
      filePath === undefined ? { lockPath, reason: verdict.reason } : {
        lockPath,
        reason: verdict.reason,
        filePath,
      },
    );
  }
  return undefined;
}

/** Removes a lock file; `false` if it was already gone. Call only under the guard. */
function remove(lockPath: string): boolean {
  try {
    Deno.removeSync(lockPath);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw fsError("remove", lockPath, error);
  } finally {
    forgetPublished(lockPath);
  }
}

function removeQuietly(path: string): void {
  try {
    Deno.removeSync(path);
  } catch {
    // Already gone, or never created.
  }
}

const TEMP_PATTERN = /^\..+\.lock\.(\d+)\.[0-9a-z]+\.tmp$/;

// A temporary file is private to its writer until linked; once the writer is dead nobody links
// it, so it can go without the guard.
function isAbandonedTemp(name: string): boolean {
  const match = TEMP_PATTERN.exec(name);
  if (!match) return false;
  const writer = Number(match[1]);
  if (writer === Deno.pid) return false;
  try {
    return !isProcessAlive(writer);
  } catch {
    return false; // cannot tell: leave it
  }
}

function removeTemp(path: string, report: PruneReport): void {
  try {
    Deno.removeSync(path);
    report.removed.push({ lockPath: path, reason: "temporary file of a writer that died" });
  } catch {
    // Gone already.
  }
}

function readLockDir(dir: string): Deno.DirEntry[] {
  try {
    return Array.from(Deno.readDirSync(dir));
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      forgetLockDir(dir);
      return [];
    }
    throw fsError("read", dir, error);
  }
}

function newRecord(unitId: string, pid: number, filePath: string): LockRecord {
  return {
    unitId,
    pid,
    filePath,
    lockedAt: Math.floor(Date.now() / 1000),
    ...ownerIdentity(pid),
    token: randomId(),
  };
}

function isOwner(record: LockRecord, unitId: string, pid: number): boolean {
  return record.unitId === unitId && record.pid === pid;
}

function randomId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(8));
  let id = "";
  for (const byte of bytes) id += byte.toString(16).padStart(2, "0");
  return id;
}
