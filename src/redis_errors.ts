/**
 * Errors of the Redis store. Each names the server (`host:port`, never the password) and says
 * what to do.
 *
 * @module
 */

import { LockError } from "./errors.ts";

/**
 * Redis could not be reached in time: the connection was refused or lost, or the server did not
 * answer within the store's `commandTimeoutMs` (stopped, overloaded, or a network partition).
 * The operation may or may not have reached the server; a lock taken that way is a lease that
 * nobody renews, so it expires.
 *
 * @example
 * ```ts
 * import { RedisLockStore, RedisUnavailableError } from "@agentlock/core/redis";
 *
 * await using store = new RedisLockStore({ url: "redis://127.0.0.1:6379" });
 * try {
 *   await store.acquire("1.1", Deno.pid, "src/main.ts");
 * } catch (error) {
 *   if (error instanceof RedisUnavailableError) console.error(error.message);
 *   else throw error;
 * }
 * ```
 */
export class RedisUnavailableError extends LockError {
  /** The server, as `host:port`. */
  readonly address: string;

  /**
   * Creates an unavailable error.
   *
   * @param address The server, as `host:port`.
   * @param message What failed and what to do.
   * @param options The underlying error as `cause`.
   */
  constructor(address: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "RedisUnavailableError";
    this.address = address;
  }
}

/**
 * Redis answered with a refusal that retrying will not fix: wrong password (`WRONGPASS`,
 * `NOAUTH`), an ACL without the needed command or key (`NOPERM`), a key of another type or
 * content where a lock belongs (`WRONGTYPE`), a read-only replica (`READONLY`), or a full
 * server (`OOM`).
 *
 * @example
 * ```ts
 * import { RedisLockStore, RedisRefusedError } from "@agentlock/core/redis";
 *
 * await using store = new RedisLockStore({ url: "redis://:wrong@127.0.0.1:6379" });
 * try {
 *   await store.list();
 * } catch (error) {
 *   if (error instanceof RedisRefusedError && error.code === "WRONGPASS") {
 *     console.error("check the password");
 *   } else throw error;
 * }
 * ```
 */
export class RedisRefusedError extends LockError {
  /** The server, as `host:port`. */
  readonly address: string;
  /** The first word of Redis's error reply, e.g. `"WRONGTYPE"`, `"NOAUTH"` or `"ERR"`. */
  readonly code: string;

  /**
   * Creates a refusal error.
   *
   * @param address The server, as `host:port`.
   * @param code The first word of Redis's error reply.
   * @param message What Redis refused and what to do.
   * @param options The underlying error as `cause`.
   */
  constructor(address: string, code: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "RedisRefusedError";
    this.address = address;
    this.code = code;
  }
}
