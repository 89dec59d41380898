/**
 * The lock API of `@agentlock/core` on Redis, for agents on several machines or containers that
 * share one repository. A lock is a lease (`SET key value NX PX lease`) that the holder renews
 * in the background; a holder that dies or is cut off loses it when the lease runs out. Every
 * acquisition gets a fencing token, larger than any before it, to hand to whatever it writes
 * to, so that a holder paused past its lease can be refused there.
 *
 * The key of a path is the store's prefix plus the file store's lock file name (the SHA-256 of
 * the path and `.lock`). Use one prefix per repository, and the same spelling of a path on every
 * machine (e.g. relative to the repository root).
 *
 * Needs `--allow-net=<redis host>`; `--allow-sys=hostname` records the host in each lock.
 *
 * @example
 * ```ts
 * import { RedisLockStore } from "@agentlock/core/redis";
 *
 * await using store = new RedisLockStore({
 *   url: "redis://127.0.0.1:6379",
 *   prefix: "agentlock:my-repo:",
 * });
 * await using held = await store.lock("src/main.ts", { unitId: "1.1", timeoutMs: 30_000 });
 * // ... edit src/main.ts, passing held.fencingToken to storage that checks it ...
 * ```
 *
 * @module
 */

import { checkOwner, checkUnit } from "./format.ts";
import { LockTimeoutError } from "./handle.ts";
import { thisHost } from "./liveness.ts";
import type { ListedLock, LockStore, StoreLockOptions } from "./lock_store.ts";
import { lockFilename } from "./paths.ts";
import { RedisConnection } from "./redis_conn.ts";
import { RedisRefusedError } from "./redis_errors.ts";
import {
  decodeValue,
  encodeValue,
  Lease,
  type LeaseHost,
  RedisHandle,
  type RedisLock,
  type RedisLockInfo,
  type RedisRecord,
  toRedisInfo,
} from "./redis_lease.ts";
import { ACQUIRE, RELEASE } from "./redis_scripts.ts";
import { jitter, Sleeper } from "./sleeper.ts";
import { checkWaitOptions, type WaitOptions } from "./wait.ts";

export { RedisRefusedError, RedisUnavailableError } from "./redis_errors.ts";
export type { RedisLock, RedisLockInfo } from "./redis_lease.ts";
export type {
  ListedLock,
  LockStore,
  StoreCompromisedEvent,
  StoreLock,
  StoreLockOptions,
} from "./lock_store.ts";
export type { LockInfo } from "./format.ts";
export type { WaitOptions } from "./wait.ts";
export { LockError } from "./errors.ts";
export { LockTimeoutError } from "./handle.ts";

/** First pause of a waiter that cannot listen for releases, in milliseconds. */
const POLL_START_MS = 2;
/** Longest pause of a waiter that cannot listen for releases. */
const POLL_CAP_MS = 100;
/** Safety-net poll of a waiter that listens for releases (a lost message, a forced delete). */
const LISTENING_POLL_MS = 250;
/** Attempts of one acquire while its own owner's lock keeps vanishing under it. */
const MAX_ATTEMPTS = 8;

/**
 * Where the Redis store connects, under which prefix it keeps its keys, and its timings.
 *
 * @example
 * ```ts
 * import type { RedisLockStoreOptions } from "@agentlock/core/redis";
 *
 * const options: RedisLockStoreOptions = {
 *   url: "redis://agents:secret@redis.internal:6379/0",
 *   prefix: "agentlock:my-repo:",
 *   leaseMs: 10_000,
 * };
 * ```
 */
export interface RedisLockStoreOptions {
  /**
   * The server: `redis://[[user]:password@]host[:port][/db]`, or `rediss://` for TLS. Default
   * `redis://127.0.0.1:6379`.
   */
  url?: string;
  /**
   * Prefix of every key of this store: one per repository, e.g. `"agentlock:my-repo:"`. Locks
   * are `<prefix><sha256>.lock`, the fencing counter `<prefix>fence`, and releases are published
   * on `<prefix>released`. Default `"agentlock:"`.
   */
  prefix?: string;
  /**
   * How long a lock outlives its last renewal, in milliseconds. The holder renews every third of
   * it; a holder that crashes blocks others this long. Default 10 000; at least 100.
   */
  leaseMs?: number;
  /**
   * How long one Redis command may take, including waiting for a (re)connection, before it fails
   * with {@linkcode RedisUnavailableError}. Default 2 000.
   */
  commandTimeoutMs?: number;
  /** How long opening a connection may take. Default: `commandTimeoutMs`. */
  connectTimeoutMs?: number;
  /**
   * The host name recorded in locks, which with the unit id and pid makes the owner. Default
   * this machine's, with `--allow-sys=hostname`; without it, none.
   */
  host?: string;
}

/**
 * A lock as {@linkcode RedisLockStore.list} reports it.
 *
 * @example
 * ```ts
 * import { RedisLockStore } from "@agentlock/core/redis";
 *
 * await using store = new RedisLockStore();
 * for (const { info, location } of await store.list()) {
 *   console.log(info.unitId, info.host, info.fencingToken, location);
 * }
 * ```
 */
export interface RedisListedLock extends ListedLock {
  /** Who holds the lock, with host and fencing token. */
  info: RedisLockInfo;
}

/** Another owner holds the lock: who, and for how much longer at most (`-1`: no expiry). */
interface Busy {
  holder: RedisRecord;
  pttl: number;
}

/**
 * Locks in Redis, with the same operations as the file store ({@linkcode LockStore}). A lock
 * taken here is a lease that this store renews in the background until it is released, until
 * the store is closed, or until the lease is lost (the key was deleted, or expired while Redis
 * was out of reach, and maybe taken by someone else). Handles learn of a loss through
 * `verify()` and `onCompromised`, and carry a fencing token.
 *
 * Owners are as in the file store, a unit id and a pid, plus the host name, since pids repeat
 * across machines. There is no liveness probe: the lock of a crashed holder expires with its
 * lease. Connections open on first use; close the store (`await using`) so that the process can
 * exit; closing releases the locks it holds.
 *
 * Every command waits at most `commandTimeoutMs` (also for a reconnection) and then throws
 * {@linkcode RedisUnavailableError}; refusals (authentication, ACL, wrong key type) throw
 * {@linkcode RedisRefusedError}.
 *
 * Needs `--allow-net=<redis host>`; `--allow-sys=hostname` to record the host.
 *
 * @example
 * ```ts
 * import { RedisLockStore } from "@agentlock/core/redis";
 *
 * await using store = new RedisLockStore({ prefix: "agentlock:my-repo:" });
 * if (await store.acquire("1.1", Deno.pid, "src/main.ts")) {
 *   try {
 *     // ... edit src/main.ts ...
 *   } finally {
 *     await store.release("1.1", Deno.pid, "src/main.ts");
 *   }
 * }
 * ```
 */
export class RedisLockStore implements LockStore<RedisLock> {
  /** The prefix of every key of this store. */
  readonly prefix: string;
  /** The lease of each lock, in milliseconds. */
  readonly leaseMs: number;
  /** The server, as `host:port`. */
  readonly address: string;
  #conn: RedisConnection;
  #host: string | undefined;
  #fenceKey: string;
  #channel: string;
  #leases = new Map<string, Lease>();
  #leaseHost: LeaseHost;
  #wakers = new Map<string, Set<() => void>>();
  #closed = false;

  /**
   * Creates a store. No connection is opened until the first operation.
   *
   * @param options The server, key prefix, lease and timeouts.
   * @throws {TypeError} When an option is malformed.
   * @throws {RangeError} When a duration is out of range.
   */
  constructor(options: RedisLockStoreOptions = {}) {
    const {
      url = "redis://127.0.0.1:6379",
      prefix = "agentlock:",
      leaseMs = 10_000,
      commandTimeoutMs = 2_000,
      connectTimeoutMs = commandTimeoutMs,
      host = thisHost(),
    } = options;
    if (typeof url !== "string") throw new TypeError("url must be a string");
    if (typeof prefix !== "string" || prefix.length === 0) {
      throw new TypeError("prefix must be a non-empty string");
    }
    if (host !== undefined && typeof host !== "string") {
      throw new TypeError("host must be a string");
    }
    checkDuration("leaseMs", leaseMs, 100);
    checkDuration("commandTimeoutMs", commandTimeoutMs, 1);
    checkDuration("connectTimeoutMs", connectTimeoutMs, 1);
    this.prefix = prefix;
    this.leaseMs = leaseMs;
    this.#host = host;
    this.#fenceKey = `${prefix}fence`;
    this.#channel = `${prefix}released`;
    this.#conn = new RedisConnection(
      { url, commandTimeoutMs, connectTimeoutMs },
      this.#channel,
      (key) => this.#woken(key),
    );
    this.address = this.#conn.address;
    const leases = this.#leases;
    this.#leaseHost = {
      conn: this.#conn,
      leaseMs,
      channel: this.#channel,
      leaseEnded(lease) {
        if (leases.get(lease.key) === lease) leases.delete(lease.key);
      },
    };
  }

  /**
   * The Redis key of a path's lock: the prefix plus the file store's lock file name.
   *
   * @param filePath The path, hashed exactly as given.
   * @returns `<prefix><sha256 hex>.lock`.
   *
   * @example
   * ```ts
   * import { RedisLockStore } from "@agentlock/core/redis";
   *
   * const store = new RedisLockStore({ prefix: "agentlock:my-repo:" });
   * console.log(await store.keyOf("src/main.ts")); // agentlock:my-repo:<64 hex digits>.lock
   * ```
   */
  async keyOf(filePath: string): Promise<string> {
    return this.prefix + await lockFilename(filePath);
  }

  /**
   * Takes the lock on `filePath` without waiting, and renews it until released.
   *
   * @param unitId The unit (task) taking the lock.
   * @param pid The process that will hold the lock, usually `Deno.pid`.
   * @param filePath The path to lock.
   * @returns `true` if taken, or already held by this owner (unit, pid and host); `false` if
   * another owner holds it.
   * @throws {RedisUnavailableError} When Redis cannot be reached in time.
   * @throws {RedisRefusedError} When Redis refuses, or the key holds something else.
   *
   * @example
   * ```ts
   * import { RedisLockStore } from "@agentlock/core/redis";
   *
   * await using store = new RedisLockStore();
   * console.log(await store.acquire("1.1", Deno.pid, "src/main.ts")); // true
   * ```
   */
  async acquire(unitId: string, pid: number, filePath: string): Promise<boolean> {
    checkOwner(unitId, pid);
    const key = await this.keyOf(filePath);
    return (await this.#take(key, unitId, pid, filePath)) instanceof Lease;
  }

  /**
   * Releases the lock on `filePath` if this owner holds it, with a compare-and-delete: a lock
   * held by anyone else is never removed. Handles sharing the lock are told it was removed.
   *
   * @param unitId The unit that holds the lock.
   * @param pid The process that holds the lock.
   * @param filePath The locked path.
   * @returns `true` if the owner held the lock and it is now deleted.
   * @throws {RedisUnavailableError} When Redis cannot be reached in time.
   *
   * @example
   * ```ts
   * import { RedisLockStore } from "@agentlock/core/redis";
   *
   * await using store = new RedisLockStore();
   * await store.acquire("1.1", Deno.pid, "src/main.ts");
   * console.log(await store.release("1.1", Deno.pid, "src/main.ts")); // true
   * ```
   */
  async release(unitId: string, pid: number, filePath: string): Promise<boolean> {
    checkOwner(unitId, pid);
    const key = await this.keyOf(filePath);
    const lease = this.#leases.get(key);
    if (lease?.held && this.#isOwner(lease.record, unitId, pid)) return await lease.release(true);
    // Taken by this owner through another store object: judge the value, delete only it.
    const value = await this.#conn.command(["GET", key]);
    const record = decodeValue(value);
    if (!record || !this.#isOwner(record, unitId, pid)) return false;
    return await this.#compareAndDelete(key, value as string);
  }

  /**
   * Says who holds the lock on `filePath`.
   *
   * @param filePath The path to check.
   * @returns The holder with host and fencing token, or `null` when the lock is free.
   * @throws {RedisRefusedError} When the key holds something that is not a lock.
   *
   * @example
   * ```ts
   * import { RedisLockStore } from "@agentlock/core/redis";
   *
   * await using store = new RedisLockStore();
   * const holder = await store.check("src/main.ts");
   * console.log(holder ? `held by ${holder.unitId} on ${holder.host}` : "free");
   * ```
   */
  async check(filePath: string): Promise<RedisLockInfo | null> {
    const key = await this.keyOf(filePath);
    const value = await this.#conn.command(["GET", key]);
    if (value === null) return null;
    const record = decodeValue(value);
    if (!record) throw this.#foreign(key);
    return toRedisInfo(record);
  }

  /**
   * Lists the locks under this store's prefix, with `SCAN` (never `KEYS`, which would block the
   * server) and `MGET` in batches of 1 000. Keys that do not hold a lock are skipped.
   *
   * @returns The held locks, with their key as `location`, in no particular order.
   *
   * @example
   * ```ts
   * import { RedisLockStore } from "@agentlock/core/redis";
   *
   * await using store = new RedisLockStore();
   * for (const { info } of await store.list()) console.log(info.unitId, info.filePath);
   * ```
   */
  async list(): Promise<RedisListedLock[]> {
    const locks: RedisListedLock[] = [];
    for (const [key, value] of await this.#scan()) {
      const record = decodeValue(value);
      if (record) locks.push({ info: toRedisInfo(record), location: key });
    }
    return locks;
  }

  /**
   * Releases every lock of a unit, whichever process or host holds it. Each is deleted only if
   * it still holds the value just read, so a lock taken again meanwhile is left alone.
   *
   * @param unitId The unit whose locks to release.
   * @returns How many locks were released.
   *
   * @example
   * ```ts
   * import { RedisLockStore } from "@agentlock/core/redis";
   *
   * await using store = new RedisLockStore();
   * console.log(`released ${await store.releaseAllForUnit("1.1")} locks`);
   * ```
   */
  async releaseAllForUnit(unitId: string): Promise<number> {
    checkUnit(unitId);
    return await this.#deleteWhere((record) => record.unitId === unitId);
  }

  /**
   * Deletes every lock under this store's prefix. Holders learn it when they renew or verify.
   *
   * @returns How many locks were deleted.
   *
   * @example
   * ```ts
   * import { RedisLockStore } from "@agentlock/core/redis";
   *
   * await using store = new RedisLockStore();
   * console.log(`cleared ${await store.clearAll()} locks`);
   * ```
   */
  async clearAll(): Promise<number> {
    return await this.#deleteWhere(() => true);
  }

  /**
   * Takes the lock on `filePath`, waiting while another owner holds it. A waiter wakes when the
   * holder releases (a message on the store's release channel) or its lease runs out, and polls
   * as a safety net.
   *
   * @param unitId The unit (task) taking the lock.
   * @param pid The process that will hold the lock.
   * @param filePath The path to lock.
   * @param options `timeoutMs` (default: wait forever; `0` tries once) and `signal`.
   * @returns `true` once taken, `false` when `timeoutMs` passed first. Rejects with
   * `signal.reason` when `signal` fires first.
   *
   * @example
   * ```ts
   * import { RedisLockStore } from "@agentlock/core/redis";
   *
   * await using store = new RedisLockStore();
   * if (await store.acquireWait("1.1", Deno.pid, "src/main.ts", { timeoutMs: 10_000 })) {
   *   await store.release("1.1", Deno.pid, "src/main.ts");
   * }
   * ```
   */
  async acquireWait(
    unitId: string,
    pid: number,
    filePath: string,
    options: WaitOptions = {},
  ): Promise<boolean> {
    checkOwner(unitId, pid);
    checkWaitOptions(options);
    options.signal?.throwIfAborted();
    const key = await this.keyOf(filePath);
    return (await this.#wait(key, unitId, pid, filePath, options)) instanceof Lease;
  }

  /**
   * Takes the lock on `filePath`, waiting while another owner holds it, and returns a handle
   * with the fencing token. Use it with `await using`. If this owner already holds the lock, the
   * handle shares that acquisition, and the lock is deleted when the last handle is released.
   *
   * @param filePath The path to lock.
   * @param options The owner (`unitId`, `pid`), `timeoutMs`, `signal`, and `onCompromised`,
   * called once if the lease is lost while held.
   * @returns The held lock.
   * @throws {LockTimeoutError} When `timeoutMs` passes first.
   * Rejects with `signal.reason` when `signal` fires first.
   *
   * @example
   * ```ts
   * import { RedisLockStore } from "@agentlock/core/redis";
   *
   * await using store = new RedisLockStore();
   * await using held = await store.lock("src/main.ts", {
   *   unitId: "1.1",
   *   timeoutMs: 30_000,
   *   onCompromised: ({ reason }) => console.error(`lost src/main.ts: ${reason}`),
   * });
   * console.log(held.fencingToken);
   * ```
   */
  async lock(filePath: string, options: StoreLockOptions<RedisLock>): Promise<RedisLock> {
    if (typeof options !== "object" || options === null) {
      throw new TypeError("options must be an object with a unitId");
    }
    const { unitId, pid = Deno.pid, onCompromised } = options;
    checkOwner(unitId, pid);
    checkWaitOptions(options);
    if (onCompromised !== undefined && typeof onCompromised !== "function") {
      throw new TypeError("onCompromised must be a function");
    }
    options.signal?.throwIfAborted();
    const key = await this.keyOf(filePath);
    const result = await this.#wait(key, unitId, pid, filePath, options);
    if (result instanceof Lease) return new RedisHandle(result, onCompromised);
    throw new LockTimeoutError(filePath, options.timeoutMs ?? Infinity, result);
  }

  /**
   * Releases the locks this store holds (best effort, each within `commandTimeoutMs`), stops
   * renewing, and closes the connections. Later calls throw. Closing again does nothing.
   *
   * @returns When closed.
   *
   * @example
   * ```ts
   * import { RedisLockStore } from "@agentlock/core/redis";
   *
   * const store = new RedisLockStore();
   * try {
   *   await store.acquire("1.1", Deno.pid, "src/main.ts");
   * } finally {
   *   await store.close();
   * }
   * ```
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const leases = [...this.#leases.values()];
    await Promise.allSettled(leases.map((lease) => lease.release()));
    for (const lease of leases) lease.abandon();
    this.#conn.close();
  }

  /**
   * Same as {@linkcode RedisLockStore.close}, for `await using`.
   *
   * @returns When closed.
   */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /** One attempt: the lease now held, or who holds the lock. */
  async #take(key: string, unitId: string, pid: number, filePath: string): Promise<Lease | Busy> {
    for (let attempt = 1;; attempt++) {
      const token = randomToken();
      const sentAt = performance.now();
      const value = encodeValue(unitId, pid, filePath, this.#host, token);
      const [taken, current, pttl] = await this.#conn.script(
        ACQUIRE,
        [key, this.#fenceKey],
        [value, String(this.leaseMs)],
      ) as [number, string, number?];
      const record = decodeValue(current);
      if (!record) throw this.#foreign(key);
      // The token also matches when a retry after a lost reply finds its own first attempt.
      if (taken === 1 || record.token === token) return this.#hold(key, current, record, sentAt);
      if (!this.#isOwner(record, unitId, pid)) return { holder: record, pttl: pttl ?? -1 };
      const lease = this.#leases.get(key);
      if (lease?.held && lease.value === current) return lease;
      // This owner took it through another store object: renew it from here too.
      const adopted = this.#hold(key, current, record, -Infinity);
      if (await adopted.renew()) return adopted;
      // It expired or was released in between: try again, a bounded number of times.
      if (attempt >= MAX_ATTEMPTS) return { holder: record, pttl: -1 };
    }
  }

  #hold(key: string, value: string, record: RedisRecord, sentAt: number): Lease {
    // A lease of an earlier acquisition still in the map ends by itself at its next renewal.
    const lease = new Lease(this.#leaseHost, key, value, record, sentAt);
    this.#leases.set(key, lease);
    return lease;
  }

  /** Attempts until taken, timed out (the last holder) or aborted (throws). */
  async #wait(
    key: string,
    unitId: string,
    pid: number,
    filePath: string,
    options: WaitOptions,
  ): Promise<Lease | RedisLockInfo | null> {
    const { timeoutMs = Infinity, signal } = options;
    const deadline = performance.now() + timeoutMs;
    let result = await this.#take(key, unitId, pid, filePath);
    if (result instanceof Lease) return result;
    if (timeoutMs <= 0) return toRedisInfo(result.holder);
    const sleeper = new Sleeper();
    const wake = () => sleeper.wake();
    const unwatch = this.#watch(key, wake);
    signal?.addEventListener("abort", wake);
    try {
      let pause = POLL_START_MS;
      for (;;) {
        signal?.throwIfAborted();
        // Subscribed before the next attempt, so that a release right after it wakes us.
        const listening = await this.#conn.listen(deadline);
        signal?.throwIfAborted();
        result = await this.#take(key, unitId, pid, filePath);
        if (result instanceof Lease) return result;
        const left = deadline - performance.now();
        if (left <= 0) return toRedisInfo(result.holder);
        const expiry = result.pttl >= 0 ? result.pttl + 1 : Infinity;
        await sleeper.sleep(Math.min(jitter(listening ? LISTENING_POLL_MS : pause), expiry, left));
        pause = Math.min(pause * 2, POLL_CAP_MS);
      }
    } finally {
      signal?.removeEventListener("abort", wake);
      unwatch();
    }
  }

  #watch(key: string, wake: () => void): () => void {
    let set = this.#wakers.get(key);
    if (!set) this.#wakers.set(key, set = new Set());
    set.add(wake);
    return () => {
      set.delete(wake);
      if (set.size === 0 && this.#wakers.get(key) === set) this.#wakers.delete(key);
    };
  }

  #woken(key: string): void {
    for (const wake of [...this.#wakers.get(key) ?? []]) wake();
  }

  #isOwner(record: RedisRecord, unitId: string, pid: number): boolean {
    return record.unitId === unitId && record.pid === pid && record.host === this.#host;
  }

  /** Deletes the key if it still holds `value`; a lease of ours on it is lost. */
  async #compareAndDelete(key: string, value: string): Promise<boolean> {
    const deleted = await this.#conn.script(RELEASE, [key], [value, this.#channel]) === 1;
    const lease = this.#leases.get(key);
    if (deleted && lease?.value === value) lease.lose({ reason: "removed", holder: null });
    return deleted;
  }

  async #deleteWhere(wanted: (record: RedisRecord) => boolean): Promise<number> {
    const results = await Promise.all(
      (await this.#scan()).map(([key, value]) => {
        const record = decodeValue(value);
        return record && wanted(record) ? this.#compareAndDelete(key, value) : false;
      }),
    );
    return results.filter(Boolean).length;
  }

  /** Every lock key of the prefix with its value. */
  async #scan(): Promise<[string, string][]> {
    // Exactly 64 characters and ".lock" after the prefix: not the keys of a longer prefix.
    const pattern = this.prefix.replace(/[*?[\]\\]/g, "\\$&") + "?".repeat(64) + ".lock";
    const keys = new Set<string>();
    let cursor = "0";
    do {
      const [next, batch] = await this.#conn.command(
        ["SCAN", cursor, "MATCH", pattern, "COUNT", "1000"],
        this.prefix,
      ) as [string, string[]];
      for (const key of batch) if (LOCK_NAME.test(key.slice(this.prefix.length))) keys.add(key);
      cursor = next;
    } while (cursor !== "0");
    const all = [...keys];
    const found: [string, string][] = [];
    for (let start = 0; start < all.length; start += 1000) {
      const chunk = all.slice(start, start + 1000);
      const values = await this.#conn.command(["MGET", ...chunk], this.prefix) as (
        | string
        | null
      )[];
      chunk.forEach((key, i) => {
        if (values[i] !== null) found.push([key, values[i]!]);
      });
    }
    return found;
  }

  #foreign(key: string): RedisRefusedError {
    return new RedisRefusedError(
      this.address,
      "WRONGTYPE",
      `Redis at ${this.address}: key ${key} holds a value that is not an agentlock lock; ` +
        `another program uses this key prefix: choose another prefix, or delete the key`,
    );
  }
}

const LOCK_NAME = /^[0-9a-f]{64}\.lock$/;

function checkDuration(name: string, value: unknown, min: number): void {
  if (typeof value !== "number" || !Number.isFinite(value) || value < min) {
    throw new RangeError(`Invalid ${name} ${value}: expected a number of milliseconds >= ${min}`);
  }
}

function randomToken(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(8));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}
