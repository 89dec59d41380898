/**
 * One lock API over several stores: {@linkcode FileLockStore} keeps locks as files in a mana
 * directory (one machine), and `RedisLockStore` (from `@agentlock/core/redis`) keeps them in
 * Redis (several machines). Code written against {@linkcode LockStore} runs on either.
 *
 * @module
 */

import type { LockInfo } from "./format.ts";
import { type FileLock, lock } from "./handle.ts";
import { acquire, checkLock, clearAll, listLocks, release, releaseAllForUnit } from "./store.ts";
import { acquireWait, type WaitOptions } from "./wait.ts";

/**
 * A held lock, whichever store took it. Release it with {@linkcode StoreLock.release}, or let
 * `await using` release it at the end of the block.
 *
 * @example
 * ```ts
 * import { FileLockStore, type StoreLock } from "@agentlock/core";
 *
 * const store = new FileLockStore(".mana");
 * const held: StoreLock = await store.lock("src/main.ts", { unitId: "1.1" });
 * try {
 *   if (!(await held.verify())) throw new Error("lost the lock on src/main.ts");
 * } finally {
 *   await held.release();
 * }
 * ```
 */
export interface StoreLock extends AsyncDisposable {
  /** The lock as taken: unit, pid, the path, and when. */
  readonly info: LockInfo;
  /** Whether this handle has been released. */
  readonly released: boolean;
  /**
   * Releases the lock, unless another handle of the same acquisition in this process still
   * holds it. A lock that someone else now holds is never removed. Releasing again does nothing.
   *
   * @returns `true` if the handle still held the lock, else `false`.
   */
  release(): Promise<boolean>;
  /**
   * Asks the store whether the lock is still this acquisition.
   *
   * @returns `false` once released, or when the lock is gone or someone else's.
   */
  verify(): Promise<boolean>;
}

/**
 * What a store's `onCompromised` callback is told when a held lock is lost.
 *
 * @typeParam L The store's handle type.
 *
 * @example
 * ```ts
 * import { FileLockStore, type StoreCompromisedEvent } from "@agentlock/core";
 *
 * const report = ({ reason, holder }: StoreCompromisedEvent) =>
 *   console.error(`lock ${reason}${holder ? ` by unit ${holder.unitId}` : ""}`);
 * await using held = await new FileLockStore(".mana").lock("src/main.ts", {
 *   unitId: "1.1",
 *   onCompromised: report,
 * });
 * ```
 */
export interface StoreCompromisedEvent<L extends StoreLock = StoreLock> {
  /** The handle whose lock was lost. */
  lock: L;
  /**
   * `"removed"`: the lock is gone. `"replaced"`: another lock is in its place. `"expired"`: a
   * lease could not be renewed before it ran out (the store was unreachable).
   */
  reason: "removed" | "replaced" | "expired";
  /** Who holds the lock now, when it is known; else `null`. */
  holder: L["info"] | null;
}

/**
 * Who takes a lock through {@linkcode LockStore.lock}, how long to wait, and whom to tell when
 * the lock is lost.
 *
 * @typeParam L The store's handle type.
 *
 * @example
 * ```ts
 * import type { StoreLockOptions } from "@agentlock/core";
 *
 * const options: StoreLockOptions = { unitId: "1.1", timeoutMs: 10_000 };
 * ```
 */
export interface StoreLockOptions<L extends StoreLock = StoreLock> extends WaitOptions {
  /** The unit (task) taking the lock. */
  unitId: string;
  /** The process that will hold the lock. Default: `Deno.pid`. */
  pid?: number;
  /** Called once if the lock is lost while the handle holds it. */
  onCompromised?: (event: StoreCompromisedEvent<L>) => void;
}

/**
 * A lock as {@linkcode LockStore.list} reports it.
 *
 * @example
 * ```ts
 * import { FileLockStore } from "@agentlock/core";
 *
 * for (const { info, location } of await new FileLockStore(".mana").list()) {
 *   console.log(info.unitId, info.filePath, location);
 * }
 * ```
 */
export interface ListedLock {
  /** Who holds the lock. */
  info: LockInfo;
  /** Where the lock lives: the lock file, or the Redis key. */
  location: string;
}

/**
 * The operations every lock store offers. A path is locked by one owner (unit id and pid) at a
 * time; the same owner taking it again succeeds, and nobody's lock is ever removed by another
 * owner's `release`.
 *
 * @typeParam L The store's handle type, returned by {@linkcode LockStore.lock}.
 *
 * @example Code that runs on the file store and on the Redis store
 * ```ts
 * import { FileLockStore, type LockStore } from "@agentlock/core";
 *
 * async function edit(store: LockStore, path: string): Promise<void> {
 *   await using held = await store.lock(path, { unitId: "1.1", timeoutMs: 30_000 });
 *   // ... edit the file ...
 * }
 *
 * await edit(new FileLockStore(".mana"), "src/main.ts");
 * ```
 */
export interface LockStore<L extends StoreLock = StoreLock> extends AsyncDisposable {
  /**
   * Takes the lock on `filePath` without waiting.
   *
   * @param unitId The unit (task) taking the lock.
   * @param pid The process that will hold the lock.
   * @param filePath The path to lock.
   * @returns `true` if taken or already held by this owner, `false` if another owner holds it.
   */
  acquire(unitId: string, pid: number, filePath: string): Promise<boolean>;
  /**
   * Releases the lock on `filePath` if this owner holds it.
   *
   * @param unitId The unit that holds the lock.
   * @param pid The process that holds the lock.
   * @param filePath The locked path.
   * @returns `true` if the owner held the lock and it is now released.
   */
  release(unitId: string, pid: number, filePath: string): Promise<boolean>;
  /**
   * Says who holds the lock on `filePath`.
   *
   * @param filePath The path to check.
   * @returns The holder, or `null` when the lock is free.
   */
  check(filePath: string): Promise<LockInfo | null>;
  /**
   * Lists the held locks.
   *
   * @returns Every held lock, in no particular order.
   */
  list(): Promise<ListedLock[]>;
  /**
   * Releases every lock of a unit, whichever process holds it.
   *
   * @param unitId The unit whose locks to release.
   * @returns How many locks were released.
   */
  releaseAllForUnit(unitId: string): Promise<number>;
  /**
   * Removes every lock. Holders learn it through `verify()` and `onCompromised`.
   *
   * @returns How many held locks were removed.
   */
  clearAll(): Promise<number>;
  /**
   * Takes the lock on `filePath`, waiting while another owner holds it.
   *
   * @param unitId The unit (task) taking the lock.
   * @param pid The process that will hold the lock.
   * @param filePath The path to lock.
   * @param options `timeoutMs` (default: wait forever) and `signal`.
   * @returns `true` once taken, `false` when `timeoutMs` passed first. Rejects with
   * `signal.reason` when `signal` fires first.
   */
  acquireWait(
    unitId: string,
    pid: number,
    filePath: string,
    options?: WaitOptions,
  ): Promise<boolean>;
  /**
   * Takes the lock on `filePath`, waiting while another owner holds it, and returns a handle.
   *
   * @param filePath The path to lock.
   * @param options The owner, `timeoutMs`, `signal` and `onCompromised`.
   * @returns The held lock. Rejects with `LockTimeoutError` when `timeoutMs` passes first.
   */
  lock(filePath: string, options: StoreLockOptions<L>): Promise<L>;
  /**
   * Frees what the store holds open (connections, timers). Locks held through it are released
   * by stores whose locks would otherwise outlive the process's intent (Redis leases).
   *
   * @returns When done.
   */
  close(): Promise<void>;
}

/**
 * The file store of this package as a {@linkcode LockStore}: locks are files in
 * `<manaDir>/locks`, shared with mana's Rust code, for agents on one machine. Each method calls
 * the function of the same role (`acquire`, `release`, `checkLock`, `listLocks`,
 * `releaseAllForUnit`, `clearAll`, `acquireWait`, `lock`) with this store's `manaDir`.
 *
 * Needs `--allow-read` and `--allow-write` for `manaDir`, `--allow-run` to probe holders and
 * `--allow-sys=hostname` to record the host, as those functions do.
 *
 * @example
 * ```ts
 * import { FileLockStore } from "@agentlock/core";
 *
 * await using store = new FileLockStore(".mana");
 * if (await store.acquire("1.1", Deno.pid, "src/main.ts")) {
 *   await store.release("1.1", Deno.pid, "src/main.ts");
 * }
 * ```
 */
export class FileLockStore implements LockStore<FileLock> {
  /** The mana directory whose `locks` directory holds the lock files. */
  readonly manaDir: string;

  /**
   * Creates a store over a mana directory. Nothing is touched until the first call.
   *
   * @param manaDir The mana directory, e.g. `".mana"`.
   */
  constructor(manaDir: string) {
    if (typeof manaDir !== "string" || manaDir.length === 0) {
      throw new TypeError("manaDir must be a non-empty string");
    }
    this.manaDir = manaDir;
  }

  /**
   * Takes the lock without waiting; see {@linkcode acquire}.
   *
   * @param unitId The unit (task) taking the lock.
   * @param pid The process that will hold the lock.
   * @param filePath The path to lock.
   * @returns Whether the caller now holds the lock.
   */
  async acquire(unitId: string, pid: number, filePath: string): Promise<boolean> {
    return await acquire(this.manaDir, unitId, pid, filePath);
  }

  /**
   * Releases the owner's lock; see {@linkcode release}.
   *
   * @param unitId The unit that holds the lock.
   * @param pid The process that holds the lock.
   * @param filePath The locked path.
   * @returns `true` if that owner held the lock and it is now removed.
   */
  async release(unitId: string, pid: number, filePath: string): Promise<boolean> {
    return await release(this.manaDir, unitId, pid, filePath);
  }

  /**
   * The live holder; see {@linkcode checkLock}.
   *
   * @param filePath The path to check.
   * @returns The holder, or `null`.
   */
  async check(filePath: string): Promise<LockInfo | null> {
    return await checkLock(this.manaDir, filePath);
  }

  /**
   * The live locks; see {@linkcode listLocks}.
   *
   * @returns The live locks, with their lock file as `location`.
   */
  async list(): Promise<ListedLock[]> {
    const locks = await listLocks(this.manaDir);
    return locks.map(({ info, lockPath }) => ({ info, location: lockPath }));
  }

  /**
   * Releases a unit's locks; see {@linkcode releaseAllForUnit}.
   *
   * @param unitId The unit whose locks to release.
   * @returns How many locks were released.
   */
  async releaseAllForUnit(unitId: string): Promise<number> {
    return await releaseAllForUnit(this.manaDir, unitId);
  }

  /**
   * Removes every lock; see {@linkcode clearAll}.
   *
   * @returns How many live locks were removed.
   */
  async clearAll(): Promise<number> {
    return await clearAll(this.manaDir);
  }

  /**
   * Takes the lock, waiting; see {@linkcode acquireWait}.
   *
   * @param unitId The unit (task) taking the lock.
   * @param pid The process that will hold the lock.
   * @param filePath The path to lock.
   * @param options `timeoutMs` and `signal`.
   * @returns Whether the caller now holds the lock.
   */
  async acquireWait(
    unitId: string,
    pid: number,
    filePath: string,
    options?: WaitOptions,
  ): Promise<boolean> {
    return await acquireWait(this.manaDir, unitId, pid, filePath, options);
  }

  /**
   * Takes the lock, waiting, and returns a handle; see {@linkcode lock}.
   *
   * @param filePath The path to lock.
   * @param options The owner, `timeoutMs`, `signal` and `onCompromised`.
   * @returns The held lock.
   */
  async lock(filePath: string, options: StoreLockOptions<FileLock>): Promise<FileLock> {
    // A file lock's events (removed, replaced) already fit the store-neutral shape.
    return await lock(this.manaDir, filePath, options);
  }

  /**
   * Does nothing: file locks live in files, and the store holds nothing open.
   *
   * @returns A resolved promise.
   */
  close(): Promise<void> {
    return Promise.resolve();
  }

  /**
   * Same as {@linkcode FileLockStore.close}, for `await using`.
   *
   * @returns A resolved promise.
   */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
