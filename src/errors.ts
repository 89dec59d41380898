/**
 * Error classes. Each message says what went wrong and what to do about it.
 *
 * @module
 */

/**
 * Base class of every error this module throws on purpose.
 *
 * @example Telling lock errors from others
 * ```ts
 * import { acquire, LockError } from "@agentlock/core";
 *
 * try {
 *   await acquire(".mana", "1.1", Deno.pid, "src/main.ts");
 * } catch (error) {
 *   if (error instanceof LockError) console.error(error.message);
 *   else throw error;
 * }
 * ```
 */
export class LockError extends Error {
  /**
   * Creates a lock error.
   *
   * @param message What went wrong and what to do.
   * @param options The underlying error, if any, as `cause`.
   */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "LockError";
  }
}

/**
 * A Deno permission or a file system permission is missing. Nothing was removed: a lock whose
 * owner could not be probed is never treated as stale.
 *
 * @example Asking for the missing flag
 * ```ts
 * import { checkLock, LockPermissionError } from "@agentlock/core";
 *
 * try {
 *   await checkLock(".mana", "src/main.ts");
 * } catch (error) {
 *   if (error instanceof LockPermissionError) console.error(error.message); // "... run with --allow-run"
 *   else throw error;
 * }
 * ```
 */
export class LockPermissionError extends LockError {
  /**
   * Creates a permission error.
   *
   * @param message Which permission is missing and which flag grants it.
   * @param options The underlying error as `cause`.
   */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "LockPermissionError";
  }
}

/**
 * The lock directory or an entry in it cannot be used: it is not a directory, the disk is full or
 * read-only, an entry where a lock file belongs is a directory, or the directory guard stayed busy.
 *
 * @example Reporting an unusable lock directory
 * ```ts
 * import { acquire, LockDirectoryError } from "@agentlock/core";
 *
 * try {
 *   await acquire(".mana", "1.1", Deno.pid, "src/main.ts");
 * } catch (error) {
 *   if (error instanceof LockDirectoryError) console.error(error.message);
 *   else throw error;
 * }
 * ```
 */
export class LockDirectoryError extends LockError {
  /**
   * Creates a lock directory error.
   *
   * @param message What is wrong with the directory and how to fix it.
   * @param options The underlying error as `cause`.
   */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "LockDirectoryError";
  }
}

/**
 * Probing whether a lock's owner is alive failed in an unexpected way. The lock is left alone.
 *
 * @example
 * ```ts
 * import { isProcessAlive, LockProbeError } from "@agentlock/core";
 *
 * try {
 *   isProcessAlive(1);
 * } catch (error) {
 *   if (!(error instanceof LockProbeError)) throw error;
 * }
 * ```
 */
export class LockProbeError extends LockError {
  /**
   * Creates a probe error.
   *
   * @param message Which process could not be probed.
   * @param options The underlying error as `cause`.
   */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "LockProbeError";
  }
}

/**
 * The platform cannot prove whether a process is alive (Windows), so no lock can be judged stale.
 *
 * @example
 * ```ts
 * import { lockDir, UnsupportedPlatformError } from "@agentlock/core";
 *
 * try {
 *   await lockDir(".mana");
 * } catch (error) {
 *   if (error instanceof UnsupportedPlatformError) console.error("use Linux or macOS");
 *   else throw error;
 * }
 * ```
 */
export class UnsupportedPlatformError extends LockError {
  /**
   * Creates an unsupported-platform error.
   *
   * @param message Which platform and why it is unsupported.
   */
  constructor(message: string) {
    super(message);
    this.name = "UnsupportedPlatformError";
  }
}

/** Maps an error from a file system call to a lock error that says what to do. */
export function fsError(action: string, path: string, error: unknown): Error {
  if (error instanceof LockError) return error;
  if (error instanceof Deno.errors.NotCapable) {
    return new LockPermissionError(
      `Cannot ${action} ${path}: Deno permission missing; run with --allow-read and --allow-write for the mana directory`,
      { cause: error },
    );
  }
  if (error instanceof Deno.errors.PermissionDenied) {
    return new LockPermissionError(
      `Cannot ${action} ${path}: the file system denied access; check the owner and mode of the lock directory`,
      { cause: error },
    );
  }
  const detail = error instanceof Error ? error.message : String(error);
  let hint = "";
  if (/ENOSPC|No space left/i.test(detail)) hint = "; the disk is full: free space and retry";
  else if (/EROFS|Read-only file system/i.test(detail)) {
    hint = "; the file system is read-only: put the mana directory on a writable disk";
  }
  return new LockDirectoryError(`Cannot ${action} ${path}: ${detail}${hint}`, { cause: error });
}
