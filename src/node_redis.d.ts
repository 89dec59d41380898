// The part of node-redis (`npm:@redis/client`) that the Redis store uses, declared here so that
// type checking and documentation do not load the client's full types (which also need Node's).
// The tests run the store against a real server, so these declarations cannot drift unnoticed.

/** Options of {@linkcode createClient}. */
export interface RedisClientOptions {
  url?: string;
  RESP?: 2 | 3;
  disableOfflineQueue?: boolean;
  maintNotifications?: "disabled" | "enabled" | "auto";
  socket?: {
    connectTimeout?: number;
    reconnectStrategy?:
      | false
      | number
      | ((retries: number, cause: Error) => false | Error | number);
  };
}

/** A connection to one Redis server. */
export interface RedisClient {
  readonly isOpen: boolean;
  readonly isReady: boolean;
  connect(): Promise<unknown>;
  destroy(): void;
  on(event: string, listener: (error?: unknown) => void): unknown;
  sendCommand(args: string[]): Promise<unknown>;
  subscribe(channel: string, listener: (message: string) => void): Promise<unknown>;
}

/** Creates a client; it connects on `connect()`. */
export function createClient(options?: RedisClientOptions): RedisClient;

/** An error reply from the server, e.g. `WRONGTYPE ...`. */
export class ErrorReply extends Error {}
