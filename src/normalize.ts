/**
 * One spelling per file. Locks are named by hashing the path string exactly as given, as mana's
 * Rust code does, so `./src/a.ts`, `src/a.ts` and `/repo/src/a.ts` are one file but three
 * locks. {@linkcode projectPath} turns all of them into the path relative to the project root
 * (the parent of the mana directory), the spelling agents working in that root use.
 *
 * @module
 */

/**
 * Returns the spelling of `filePath` to lock under, relative to the project root: the parent of
 * `manaDir`. Relative paths are resolved against the current directory, as the file system does;
 * `.` and `..` segments, repeated and trailing slashes are removed. A path inside the project
 * root becomes root-relative (`src/a.ts`, or `.` for the root itself); a path outside it stays
 * absolute. Symlinks are not resolved: the path need not exist.
 *
 * Locking is unchanged by default (paths are hashed exactly as given, compatible with mana's Rust
 * code); pass paths through this function, or the `normalize` option of {@linkcode lock} and
 * {@linkcode LockSession}, in every agent that should share one spelling. Root-relative paths
 * match the locks of Rust agents that are given root-relative paths.
 *
 * Needs no permissions: it only computes a string.
 *
 * @param manaDir The mana directory, e.g. `".mana"`; its parent is the project root.
 * @param filePath The path as the agent spells it.
 * @returns The root-relative path, or the normalised absolute path outside the root.
 * @throws {TypeError} When either argument is not a non-empty string.
 *
 * @example
 * ```ts
 * import { projectPath } from "@agentlock/core";
 *
 * // In /repo, with the mana directory /repo/.mana:
 * projectPath(".mana", "./src/a.ts"); // "src/a.ts"
 * projectPath(".mana", "/repo/src/../src/a.ts"); // "src/a.ts"
 * projectPath(".mana", "/etc/hosts"); // "/etc/hosts"
 * ```
 */
export function projectPath(manaDir: string, filePath: string): string {
  if (typeof manaDir !== "string" || manaDir.length === 0) {
    throw new TypeError("manaDir must be a non-empty string");
  }
  if (typeof filePath !== "string" || filePath.length === 0) {
    throw new TypeError("filePath must be a non-empty string");
  }
  const root = segments(manaDir).slice(0, -1);
  const file = segments(filePath);
  const inside = file.length >= root.length && root.every((part, i) => part === file[i]);
  if (!inside) return "/" + file.join("/");
  return file.slice(root.length).join("/") || ".";
}

/**
 * The segments of the absolute form of `path`, resolved against the current directory, without
 * `.` and `..`. Written out because importing `node:path` would slow every process start.
 */
function segments(path: string): string[] {
  const absolute = path.startsWith("/") ? path : `${Deno.cwd()}/${path}`;
  const parts: string[] = [];
  for (const part of absolute.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") parts.pop();
    else parts.push(part);
  }
  return parts;
}
