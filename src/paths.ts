/**
 * Where locks live: `<manaDir>/locks/<sha256 hex of the path>.lock`, as mana-core names them.
 *
 * @module
 */

import { fsError, LockDirectoryError, UnsupportedPlatformError } from "./errors.ts";
import { sha256Hex } from "./sha256.ts";

/** Name of the per-directory guard file; its extension is not `.lock`, so mana ignores it. */
export const GUARD_NAME = ".agentlock.guard";

/** Suffix of the temporary files a lock is written to before it is published. */
export const TEMP_SUFFIX = ".tmp";

const encoder = new TextEncoder();

// The file name of a path never changes, and hashing costs as much as a system call, so each
// path is hashed once per process. Bounded so that a long-lived process cannot grow it forever.
const filenameCache = new Map<string, string>();
const FILENAME_CACHE_LIMIT = 4096;

function remember(filePath: string, name: string): string {
  if (filenameCache.size >= FILENAME_CACHE_LIMIT) filenameCache.clear();
  filenameCache.set(filePath, name);
  return name;
}

function checkFilePath(filePath: string): void {
  if (typeof filePath !== "string" || filePath.length === 0) {
    throw new TypeError("filePath must be a non-empty string");
  }
  if (!filePath.isWellFormed()) {
    throw new TypeError(
      "filePath contains a lone UTF-16 surrogate; it has no UTF-8 form, so it cannot be hashed as mana does",
    );
  }
}

/**
 * Returns the lock file name for a path: the lowercase hex SHA-256 of the path's UTF-8 bytes,
 * plus `.lock`. The path is hashed exactly as given; `./a.ts` and `a.ts` are different locks.
 *
 * Needs no permissions.
 *
 * @param filePath The path to lock, as agents spell it.
 * @returns The lock file name, e.g. `"9f86…08.lock"`.
 *
 * @example
 * ```ts
 * import { lockFilename } from "@agentlock/core";
 *
 * const name = await lockFilename("/tmp/test.rs");
 * console.log(name); // 64 hex digits + ".lock"
 * ```
 */
export async function lockFilename(filePath: string): Promise<string> {
  const cached = filenameCache.get(filePath);
  if (cached !== undefined) return cached;
  checkFilePath(filePath);
  const digest = await crypto.subtle.digest("SHA-256", encoder.encode(filePath));
  return remember(filePath, toHex(new Uint8Array(digest)) + ".lock");
}

/**
 * Synchronous {@linkcode lockFilename}, for code that cannot await (exit handlers).
 *
 * Needs no permissions.
 *
 * @param filePath The path to lock, as agents spell it.
 * @returns The lock file name.
 *
 * @example
 * ```ts
 * import { lockFilenameSync } from "@agentlock/core";
 *
 * console.log(lockFilenameSync("/tmp/test.rs"));
 * ```
 */
export function lockFilenameSync(filePath: string): string {
  const cached = filenameCache.get(filePath);
  if (cached !== undefined) return cached;
  checkFilePath(filePath);
  // Web Crypto has no synchronous digest.
  return remember(filePath, sha256Hex(filePath) + ".lock");
}

function toHex(bytes: Uint8Array): string {
  let hex = "";
  for (const byte of bytes) hex += byte.toString(16).padStart(2, "0");
  return hex;
}

// Directories this process has created or found; the store drops an entry when a call finds
// the directory gone, so a deleted lock directory is created again.
const knownDirs = new Set<string>();

/** Throws on platforms where no lock can be judged stale. */
export function assertSupportedPlatform(): void {
  if (Deno.build.os === "windows") {
    throw new UnsupportedPlatformError(
      "agentlock needs Linux or macOS: on Windows it cannot prove whether a lock's process is alive",
    );
  }
}

/**
 * Returns `<manaDir>/locks`, creating it (and its parents) if needed.
 *
 * Needs `--allow-read` and `--allow-write` for `manaDir`.
 *
 * @param manaDir The mana directory, e.g. `".mana"`.
 * @returns The lock directory path.
 * @throws {LockDirectoryError} When the path exists and is not a directory, or cannot be created.
 * @throws {LockPermissionError} When a permission is missing.
 *
 * @example
 * ```ts
 * import { lockDir } from "@agentlock/core";
 *
 * const dir = await lockDir(".mana"); // ".mana/locks"
 * ```
 */
export function lockDir(manaDir: string): Promise<string> {
  try {
    return Promise.resolve(lockDirSync(manaDir));
  } catch (error) {
    return Promise.reject(error);
  }
}

/**
 * Synchronous {@linkcode lockDir}.
 *
 * Needs `--allow-read` and `--allow-write` for `manaDir`.
 *
 * @param manaDir The mana directory, e.g. `".mana"`.
 * @returns The lock directory path.
 *
 * @example
 * ```ts
 * import { lockDirSync } from "@agentlock/core";
 *
 * const dir = lockDirSync(".mana");
 * ```
 */
export function lockDirSync(manaDir: string): string {
  assertSupportedPlatform();
  if (typeof manaDir !== "string" || manaDir.length === 0) {
    throw new TypeError("manaDir must be a non-empty string");
  }
  const dir = joinPath(manaDir, "locks");
  if (knownDirs.has(dir)) return dir;
  let isDirectory: boolean;
  try {
    isDirectory = Deno.statSync(dir).isDirectory;
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw fsError("inspect", dir, error);
    try {
      Deno.mkdirSync(dir, { recursive: true });
    } catch (error) {
      throw fsError("create", dir, error);
    }
    isDirectory = true;
  }
  if (!isDirectory) {
    throw new LockDirectoryError(`${dir} exists but is not a directory; move it away`);
  }
  knownDirs.add(dir);
  return dir;
}

/** Forgets that `dir` exists, so that the next call creates it again. */
export function forgetLockDir(dir: string): void {
  knownDirs.delete(dir);
}

/** Joins two path parts with `/`; both targets (Linux, macOS) use it. */
export function joinPath(dir: string, name: string): string {
  return dir.endsWith("/") ? dir + name : `${dir}/${name}`;
}
