/**
 * File locks for AI coding agents that work side by side in one repository, compatible with the
 * lock files of mana-core (`<mana_dir>/locks/<sha256>.lock`), so that Deno agents and mana's
 * Rust code exclude each other. Two owners never hold one lock, also under crashes and races.
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
 *
 * @module
 */

export type { ActiveLock, LockInfo } from "./src/format.ts";
export {
  LockDirectoryError,
  LockError,
  LockPermissionError,
  LockProbeError,
  UnsupportedPlatformError,
} from "./src/errors.ts";
export { lockDir, lockDirSync, lockFilename, lockFilenameSync } from "./src/paths.ts";
export { isProcessAlive } from "./src/liveness.ts";
export {
  acquire,
  acquireSync,
  checkLock,
  checkLockSync,
  clearAll,
  listLocks,
  pruneLocks,
  type PruneReport,
  release,
  releaseAllForUnit,
  releaseAllForUnitSync,
  releaseSync,
  type RemovedLock,
} from "./src/store.ts";
export { acquireWait, type WaitOptions } from "./src/wait.ts";
export {
  type CompromisedEvent,
  type FileLock,
  lock,
  type LockOptions,
  lockSync,
  type LockSyncOptions,
  LockTimeoutError,
} from "./src/handle.ts";
export { type ExitSignal, LockSession, type LockSessionOptions } from "./src/session.ts";
export {
  FileLockStore,
  type ListedLock,
  type LockStore,
  type StoreCompromisedEvent,
  type StoreLock,
  type StoreLockOptions,
} from "./src/lock_store.ts";
export { projectPath } from "./src/normalize.ts";
