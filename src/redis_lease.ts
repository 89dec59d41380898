/**
 * Leases of the Redis store: a lock this process holds, renewed in the background until it is
 * released or lost, and the handles that share it.
 *
 * @module
 */

import type { LockInfo } from "./format.ts";
import type { StoreCompromisedEvent, StoreLock } from "./lock_store.ts";
import type { RedisConnection } from "./redis_conn.ts";
import { RELEASE, RENEW } from "./redis_scripts.ts";

/**
 * A lock as the Redis store records it: the mana fields, the holder's host, and the fencing
 * token of the acquisition.
 *
 * @example
 * ```ts
 * import { RedisLockStore } from "@agentlock/core/redis";
 *
 * await using store = new RedisLockStore({ prefix: "agentlock:my-repo:" });
 * const holder = await store.check("src/main.ts");
 * if (holder) console.log(`${holder.unitId} on ${holder.host}, token ${holder.fencingToken}`);
 * ```
 */
export interface RedisLockInfo extends LockInfo {
  /** The holder's host name, when it could be read (`--allow-sys=hostname`). */
  host?: string;
  /**
   * The fencing token: larger for every later acquisition of any lock of the store's prefix. A
   * safe integer.
   */
  fencingToken: number;
}

/** A lock value as stored: {@linkcode RedisLockInfo} plus the random token of the acquisition. */
export interface RedisRecord extends RedisLockInfo {
  token: string;
}

/**
 * The stored JSON up to `"fence":`, which the acquire script completes. Keys as in the lock
 * files, so that a person reading Redis sees what they know.
 */
export function encodeValue(
  unitId: string,
  pid: number,
  filePath: string,
  host: string | undefined,
  token: string,
): string {
  const json = JSON.stringify({
    unit_id: unitId,
    pid,
    file_path: filePath,
    locked_at: Math.floor(Date.now() / 1000),
    ...(host === undefined ? {} : { host }),
    token,
  });
  return `${json.slice(0, -1)},"fence":`;
}

/** Parses a stored value; `null` when it is not a lock of this store. */
export function decodeValue(value: unknown): RedisRecord | null {
  if (typeof value !== "string") return null;
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(value);
  } catch {
    return null;
  }
  if (typeof json !== "object" || json === null) return null;
  const { unit_id, pid, file_path, locked_at, host, token, fence } = json;
  if (
    typeof unit_id !== "string" || !Number.isSafeInteger(pid) || typeof file_path !== "string" ||
    !Number.isSafeInteger(locked_at) || typeof token !== "string" || !Number.isSafeInteger(fence)
  ) {
    return null;
  }
  const record: RedisRecord = {
    unitId: unit_id,
    pid: pid as number,
    filePath: file_path,
    lockedAt: locked_at as number,
    fencingToken: fence as number,
    token,
  };
  if (typeof host === "string") record.host = host;
  return record;
}

/** The public part of a record: everything but the token. */
export function toRedisInfo(record: RedisRecord): RedisLockInfo {
  const { token: _, ...info } = record;
  return info;
}

/** How a lease was lost. */
export type Loss = Pick<StoreCompromisedEvent, "reason"> & { holder: RedisLockInfo | null };

/** What a lease needs from its store. */
export interface LeaseHost {
  readonly conn: RedisConnection;
  readonly leaseMs: number;
  readonly channel: string;
  /** Called once when the lease ends (released or lost). */
  leaseEnded(lease: Lease): void;
}

/** The share of a lease that counts as safe, allowing for clock drift between hosts. */
function validity(leaseMs: number): number {
  return leaseMs - Math.ceil(leaseMs * 0.01) - 2;
}

/**
 * A lock this process holds. It renews itself every third of the lease with a compare-and-expire
 * script, and ends when released or when a renewal or a check finds the key gone or someone
 * else's, or when renewals fail until the lease has run out.
 */
export class Lease {
  readonly key: string;
  readonly value: string;
  readonly record: RedisRecord;
  /** Handles sharing this lease; the last one to be released frees the lock. */
  handles = 0;
  #host: LeaseHost;
  #state: "held" | "lost" | "released" = "held";
  #validUntil: number;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #listeners = new Set<(loss: Loss) => void>();

  constructor(host: LeaseHost, key: string, value: string, record: RedisRecord, sentAt: number) {
    this.#host = host;
    this.key = key;
    this.value = value;
    this.record = record;
    this.#validUntil = sentAt + validity(host.leaseMs);
    this.#schedule(host.leaseMs / 3);
  }

  /** Whether the lease is neither released nor known to be lost. */
  get held(): boolean {
    return this.#state === "held";
  }

  /** Calls `listener` once if the lease is lost; returns the unsubscribe function. */
  onLoss(listener: (loss: Loss) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Restarts the lease now. `false` (and the lease is lost) when the key is not ours anymore. */
  async renew(): Promise<boolean> {
    if (!this.held) return false;
    const sentAt = performance.now();
    // A renewal is worth waiting for only while the lease may still be valid.
    const wait = Math.max(this.#validUntil - sentAt, this.#host.leaseMs / 3);
    const reply = await this.#host.conn.script(
      RENEW,
      [this.key],
      [this.value, String(this.#host.leaseMs)],
      wait,
    ) as [number, string?];
    if (!this.held) return false;
    if (reply[0] === 1) {
      this.#validUntil = sentAt + validity(this.#host.leaseMs);
      return true;
    }
    this.lose(lossOf(reply[1] ?? null));
    return false;
  }

  /** Asks Redis whether the key still holds this lease's value; a lease found lost ends. */
  async verify(): Promise<boolean> {
    if (!this.held) return false;
    const current = await this.#host.conn.command(["GET", this.key]);
    if (!this.held) return false;
    if (current === this.value) return true;
    this.lose(lossOf(current));
    return false;
  }

  /**
   * Deletes the key if it still holds this lease's value, and ends the lease. With `notify`,
   * handles still sharing the lease are told that it was removed. On an error the lease stays
   * held (and renewed), so that the release can be tried again.
   */
  async release(notify = false): Promise<boolean> {
    if (!this.held) return false;
    clearTimeout(this.#timer);
    let reply;
    try {
      reply = await this.#host.conn.script(RELEASE, [this.key], [this.value, this.#host.channel]);
    } catch (error) {
      if (this.held) this.#schedule(0);
      throw error;
    }
    if (!this.held) return false;
    if (notify && this.handles > 0) this.lose({ reason: "removed", holder: null });
    else this.#end("released");
    return reply === 1;
  }

  /** Ends the lease as lost and tells the listeners, once. */
  lose(loss: Loss): void {
    if (!this.held) return;
    this.#end("lost");
    for (const listener of [...this.#listeners]) {
      try {
        listener(loss);
      } catch (error) {
        // Thrown from a timer callback: report it as any uncaught error.
        reportError(error);
      }
    }
  }

  /** Stops renewing without touching Redis: the key expires with its lease. */
  abandon(): void {
    if (this.held) this.#end("released");
  }

  #end(state: "lost" | "released"): void {
    this.#state = state;
    clearTimeout(this.#timer);
    this.#host.leaseEnded(this);
  }

  #schedule(ms: number): void {
    clearTimeout(this.#timer);
    const timer = setTimeout(() => this.#tick(), ms);
    // Renewals never keep a process alive; the open store connection does, until closed.
    Deno.unrefTimer(timer);
    this.#timer = timer;
  }

  async #tick(): Promise<void> {
    if (!this.held) return;
    try {
      if (await this.renew()) this.#schedule(this.#host.leaseMs / 3);
    } catch {
      if (!this.held) return;
      const left = this.#validUntil - performance.now();
      if (left <= 0) this.lose({ reason: "expired", holder: null });
      // Unreachable for now: try again soon, and once more right when the lease runs out.
      else this.#schedule(Math.min(this.#host.leaseMs / 6, left));
    }
  }
}

function lossOf(current: unknown): Loss {
  if (current === null || current === undefined) return { reason: "removed", holder: null };
  const record = decodeValue(current);
  return { reason: "replaced", holder: record && toRedisInfo(record) };
}

/**
 * A lock held in Redis. Besides what every {@linkcode StoreLock} offers, it carries the
 * fencing token of its acquisition.
 *
 * @example Passing the fencing token to the storage that is written
 * ```ts
 * import { RedisLockStore } from "@agentlock/core/redis";
 *
 * await using store = new RedisLockStore({ prefix: "agentlock:my-repo:" });
 * await using held = await store.lock("src/main.ts", { unitId: "1.1" });
 * // The storage keeps the largest token it has seen and refuses writes with a smaller one,
 * // so a holder that was paused past its lease cannot overwrite its successor's work.
 * console.log(`write with token ${held.fencingToken}`);
 * ```
 */
export interface RedisLock extends StoreLock {
  /** The lock as taken, with its host and fencing token. */
  readonly info: RedisLockInfo;
  /** The Redis key of the lock: the prefix plus the lock file name of the path. */
  readonly key: string;
  /** The fencing token of this acquisition (same as `info.fencingToken`). */
  readonly fencingToken: number;
}

/** The handle behind {@linkcode RedisLock}. */
export class RedisHandle implements RedisLock {
  readonly info: RedisLockInfo;
  readonly key: string;
  readonly fencingToken: number;
  #lease: Lease;
  #state: "held" | "releasing" | "released" = "held";
  #unsubscribe?: () => void;

  constructor(lease: Lease, onCompromised?: (event: StoreCompromisedEvent<RedisLock>) => void) {
    this.#lease = lease;
    this.info = toRedisInfo(lease.record);
    this.key = lease.key;
    this.fencingToken = lease.record.fencingToken;
    lease.handles++;
    if (onCompromised) {
      this.#unsubscribe = lease.onLoss(({ reason, holder }) => {
        if (this.#state === "held") onCompromised({ lock: this, reason, holder });
      });
    }
  }

  get released(): boolean {
    return this.#state === "released";
  }

  async release(): Promise<boolean> {
    if (this.#state !== "held") return false;
    // Set before awaiting, so that a second release while this one runs returns false.
    this.#state = "releasing";
    const lease = this.#lease;
    try {
      let result: boolean;
      if (lease.handles > 1) {
        result = lease.held;
        lease.handles--;
      } else {
        result = await lease.release();
        lease.handles = 0;
      }
      this.#state = "released";
      this.#unsubscribe?.();
      return result;
    } catch (error) {
      this.#state = "held";
      throw error;
    }
  }

  verify(): Promise<boolean> {
    return this.#state === "held" ? this.#lease.verify() : Promise.resolve(false);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.release();
  }
}
