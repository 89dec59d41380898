/**
 * The Redis connection of the Redis store, over node-redis (`@redis/client`, the core of the
 * `redis` npm package). Its job is that nothing waits past a deadline: each command gets
 * `commandTimeoutMs`, including any wait for a (re)connection, and every failure becomes a
 * {@linkcode RedisUnavailableError} or {@linkcode RedisRefusedError} naming the server.
 *
 * @module
 */

// @ts-types="./node_redis.d.ts"
import { createClient, ErrorReply, type RedisClient as Client } from "npm:@redis/client@6.4.0";
import { LockError } from "./errors.ts";
import { RedisRefusedError, RedisUnavailableError } from "./redis_errors.ts";
import type { Script } from "./redis_scripts.ts";

/** Where and how to connect. */
export interface ConnectionOptions {
  url: string;
  connectTimeoutMs: number;
  commandTimeoutMs: number;
}

/** Replies after which the same command can succeed a moment later. */
const TRANSIENT = /^(LOADING|BUSY|TRYAGAIN|MASTERDOWN|CLUSTERDOWN)\b/;
/** Replies that no retry fixes; connecting with them is given up at once. */
const REFUSAL = /^(WRONGPASS|NOAUTH|NOPERM|ERR (invalid password|AUTH|Client sent AUTH))/i;

/** `host:port` of a Redis URL; it names the server in messages without its password. */
export function addressOf(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch (error) {
    throw new TypeError(`Invalid Redis url ${JSON.stringify(url)}`, { cause: error });
  }
  if (parsed.protocol !== "redis:" && parsed.protocol !== "rediss:") {
    throw new TypeError(
      `Invalid Redis url: expected redis:// or rediss://, got ${parsed.protocol}`,
    );
  }
  return `${parsed.hostname || "127.0.0.1"}:${parsed.port || "6379"}`;
}

const TIMED_OUT = Symbol("timed out");

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T | typeof TIMED_OUT> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<typeof TIMED_OUT>((resolve) => {
    timer = setTimeout(() => resolve(TIMED_OUT), Math.max(0, ms));
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function detail(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * One node-redis client that is replaced when it fails for good or stops answering. Callers
 * wait for it to be ready, up to their deadline.
 */
class Link {
  lastError: unknown = null;
  #options: ConnectionOptions;
  #address: string;
  #client: Client | null = null;
  #generation = 0;
  #failure: { generation: number; error: Error } | null = null;
  /** Whether the current client's first connection is still being tried. */
  #connecting = false;
  #listeners = new Set<() => void>();
  #closed = false;

  constructor(options: ConnectionOptions, address: string) {
    this.#options = options;
    this.#address = address;
  }

  /** The ready client, waiting for a (re)connection until `deadline` (`performance.now()`). */
  async ready(deadline: number): Promise<Client> {
    let seen = -1;
    for (;;) {
      if (this.#closed) throw new LockError("The Redis lock store is closed; create a new one");
      // A client closed for good after connecting (its reconnection was given up) is replaced.
      if (this.#client && !this.#connecting && !this.#client.isOpen) this.#drop(this.#client);
      if (!this.#client) {
        // The connection this caller waited for failed for good: report that, do not retry.
        if (this.#failure && this.#failure.generation === seen) throw this.#failure.error;
        this.#open();
      }
      const client = this.#client!;
      seen = this.#generation;
      if (client.isReady) return client;
      const left = deadline - performance.now();
      if (left <= 0) throw this.unreachable();
      await this.#changed(left);
    }
  }

  /** Drops a client that stopped answering; the next caller connects afresh. */
  reset(client: Client): void {
    if (this.#client === client) this.#drop(client);
  }

  close(): void {
    this.#closed = true;
    if (this.#client) this.#drop(this.#client);
    this.#notify();
  }

  unreachable(): RedisUnavailableError | RedisRefusedError {
    const cause = this.lastError;
    if (cause instanceof ErrorReply && REFUSAL.test(cause.message)) {
      return refusal(this.#address, cause, "");
    }
    const why = cause ? ` (${detail(cause)})` : "";
    return new RedisUnavailableError(
      this.#address,
      `Redis at ${this.#address} is unreachable${why}: start the server, or fix the url option`,
      { cause },
    );
  }

  #open(): void {
    const generation = ++this.#generation;
    this.#failure = null;
    const client = createClient({
      url: this.#options.url,
      RESP: 2,
      // Commands fail at once while disconnected, instead of queueing past their deadline.
      disableOfflineQueue: true,
      // No enterprise maintenance handshake: it reads environment variables (an extra Deno
      // permission) and plain Redis does not offer it.
      maintNotifications: "disabled",
      socket: {
        connectTimeout: this.#options.connectTimeoutMs,
        reconnectStrategy: (retries: number, cause: Error) =>
          cause instanceof ErrorReply && REFUSAL.test(cause.message)
            ? cause
            : Math.min(20 * 2 ** retries, 500),
      },
    });
    client.on("error", (error: unknown) => {
      this.lastError = error;
      this.#notify();
    });
    client.on("ready", () => {
      this.lastError = null;
      this.#notify();
    });
    client.on("end", () => this.#notify());
    this.#client = client;
    this.#connecting = true;
    client.connect().then(() => {
      if (this.#client === client) this.#connecting = false;
    }, (error: unknown) => {
      this.lastError ??= error;
      if (this.#client !== client) return;
      this.#connecting = false;
      this.#client = null;
      const cause = error instanceof ErrorReply ? error : this.lastError;
      this.#failure = {
        generation,
        error: cause instanceof ErrorReply ? refusal(this.#address, cause, "") : this.unreachable(),
      };
      this.#notify();
    });
  }

  #drop(client: Client): void {
    this.#client = null;
    try {
      client.destroy();
    } catch {
      // Already closed.
    }
  }

  #changed(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#listeners.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.#listeners.add(done);
    });
  }

  #notify(): void {
    for (const listener of [...this.#listeners]) listener();
  }
}

/** Maps an error reply to a refusal whose message says what to do. */
function refusal(address: string, error: ErrorReply, key: string): RedisRefusedError {
  const message = error.message;
  const code = /^[A-Z]+/.exec(message)?.[0] ?? "ERR";
  const at = `Redis at ${address}`;
  let text: string;
  if (code === "NOPERM") {
    text = `${at} denied a command to this user (${message}): its ACL needs GET, SET, ` +
      `PEXPIRE, PTTL, DEL, INCR, SCAN, MGET, EVAL, EVALSHA, PUBLISH and SUBSCRIBE on the prefix`;
  } else if (code === "WRONGPASS" || code === "NOAUTH" || REFUSAL.test(message)) {
    text = `${at} refused authentication (${message}): check the user and password in the url`;
  } else if (code === "WRONGTYPE") {
    text = `${at}: key ${key} holds a value of another type, not a lock (${message}); ` +
      `another program uses this key prefix: choose another prefix, or delete the key`;
  } else if (code === "READONLY") {
    text = `${at} is a read-only replica (${message}): connect to the primary`;
  } else if (code === "OOM") {
    text = `${at} is out of memory (${message}): free memory or raise maxmemory`;
  } else {
    text = `${at} refused a command (${message})`;
  }
  return new RedisRefusedError(address, code, text, { cause: error });
}

/** Commands and scripts with deadlines, and a release channel to listen to. */
export class RedisConnection {
  /** The server, as `host:port`. */
  readonly address: string;
  readonly commandTimeoutMs: number;
  #main: Link;
  #sub: Link;
  #subscribed: Client | null = null;
  #channel: string;
  #onMessage: (message: string) => void;

  constructor(
    options: ConnectionOptions,
    channel: string,
    onMessage: (message: string) => void,
  ) {
    this.address = addressOf(options.url);
    this.commandTimeoutMs = options.commandTimeoutMs;
    this.#main = new Link(options, this.address);
    this.#sub = new Link(options, this.address);
    this.#channel = channel;
    this.#onMessage = onMessage;
  }

  /**
   * Runs one command, waiting for a connection if needed, for at most `commandTimeoutMs`.
   * `key` names the key in a `WRONGTYPE` message.
   */
  async command(args: string[], key = args[1] ?? ""): Promise<unknown> {
    const deadline = performance.now() + this.commandTimeoutMs;
    try {
      return await this.#call(args, deadline, this.commandTimeoutMs);
    } catch (error) {
      throw error instanceof ErrorReply ? refusal(this.address, error, key) : error;
    }
  }

  /**
   * Runs a script by its SHA-1, sending its source once when Redis does not know it, for at most
   * `timeoutMs` (default `commandTimeoutMs`).
   */
  async script(
    script: Script,
    keys: string[],
    args: string[],
    timeoutMs: number = this.commandTimeoutMs,
  ): Promise<unknown> {
    const deadline = performance.now() + timeoutMs;
    const tail = [String(keys.length), ...keys, ...args];
    try {
      try {
        return await this.#call(["EVALSHA", await script.sha(), ...tail], deadline, timeoutMs);
      } catch (error) {
        // A restarted server has forgotten every script.
        if (!(error instanceof ErrorReply && error.message.startsWith("NOSCRIPT"))) throw error;
        return await this.#call(["EVAL", script.source, ...tail], deadline, timeoutMs);
      }
    } catch (error) {
      throw error instanceof ErrorReply ? refusal(this.address, error, keys.join(" or ")) : error;
    }
  }

  /**
   * Makes sure the release channel is subscribed, waiting at most until `deadline`. Returns
   * `false` when it cannot be (then waiters poll); never throws.
   */
  async listen(deadline: number): Promise<boolean> {
    try {
      const client = await this.#sub.ready(Math.min(deadline, this.#deadline()));
      if (this.#subscribed === client) return true;
      const done = await withTimeout(
        client.subscribe(this.#channel, (message: string) => this.#onMessage(message)),
        this.#deadline() - performance.now(),
      );
      if (done === TIMED_OUT) {
        this.#sub.reset(client);
        return false;
      }
      this.#subscribed = client;
      return true;
    } catch {
      return false;
    }
  }

  /** Closes both connections; pending commands fail with a closed-store error. */
  close(): void {
    this.#main.close();
    this.#sub.close();
  }

  #deadline(): number {
    return performance.now() + this.commandTimeoutMs;
  }

  async #call(args: string[], deadline: number, budgetMs: number): Promise<unknown> {
    for (;;) {
      const client = await this.#main.ready(deadline);
      let reply;
      try {
        reply = await withTimeout(client.sendCommand(args), deadline - performance.now());
      } catch (error) {
        const transient = error instanceof ErrorReply && TRANSIENT.test(error.message);
        if (error instanceof ErrorReply && !transient) throw error;
        // Disconnected, or the server is loading: try again on the next connection.
        this.#main.lastError = error;
        if (performance.now() >= deadline) throw this.#main.unreachable();
        await sleep(Math.min(20, Math.max(0, deadline - performance.now())));
        continue;
      }
      if (reply !== TIMED_OUT) return reply;
      // The connection may be dead without knowing it (a stopped server, a partition): replies
      // to later commands would queue behind this one, so start afresh.
      this.#main.reset(client);
      throw new RedisUnavailableError(
        this.address,
        `Redis at ${this.address} did not answer ${args[0]} within ${Math.round(budgetMs)} ms: ` +
          `the server is stopped, overloaded or cut off; raise commandTimeoutMs if it is only slow`,
      );
    }
  }
}
