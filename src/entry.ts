/**
 * Reading one entry of the lock directory safely, and judging it. Only a regular file is opened
 * (an lstat comes first), so a read never follows a symlink or waits on a FIFO found in the
 * directory, and it never reads more than {@linkcode MAX_LOCK_BYTES}.
 *
 * @module
 */

import { fsError } from "./errors.ts";
import { decodeLock, type LockRecord, MAX_LOCK_BYTES } from "./format.ts";
import { type OwnerStatus, ownerStatus } from "./liveness.ts";

/**
 * How long an unreadable lock file counts as being written rather than corrupt. Locks written
 * here appear complete (see docs/protocol.md); mana's Rust code creates the file first and
 * writes it a few microseconds later, and this grace keeps its half-written locks safe.
 */
export const WRITE_GRACE_MS = 5_000;

/** What is at a lock name. */
export type Entry =
  | { kind: "missing" }
  | { kind: "lock"; record: LockRecord }
  | { kind: "corrupt"; reason: string; ageMs: number }
  | { kind: "directory" };

/** What may be done about an entry: leave it (held), remove it (stale), or neither (blocked). */
export type Verdict =
  | { state: "held"; record?: LockRecord; reason?: string }
  | { state: "stale"; reason: string }
  | { state: "blocked"; reason: string };

const buffer = new Uint8Array(MAX_LOCK_BYTES + 1);

/**
 * Reads and parses the entry at `path`. A scan passes the directory entry it listed: its type
 * comes free with the listing, so a regular file is read without an lstat first.
 */
export function readEntry(path: string, listed?: Deno.DirEntry): Entry {
  let info: Deno.FileInfo | undefined;
  if (!listed?.isFile) {
    info = lstat(path);
    if (info === undefined) return { kind: "missing" };
    if (info.isDirectory) return { kind: "directory" };
    if (!info.isFile) {
      // No lock writer makes these, so no grace applies: they are never half-written locks.
      const reason = info.isSymlink ? "a symlink" : "not a regular file";
      return { kind: "corrupt", reason, ageMs: Infinity };
    }
  }
  let file: Deno.FsFile;
  try {
    // Read-only: a write open through a symlink swapped in after the lstat could reach a device
    // with side effects. The residual risk is a FIFO swapped in during those microseconds,
    // which would make this one open wait for a writer (docs/protocol.md).
    file = Deno.openSync(path, { read: true });
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return { kind: "missing" };
    throw fsError("read", path, error);
  }
  let length: number;
  try {
    // One bounded read. Had the entry been swapped since the lstat, what is read here only
    // decides how it is judged, and every removal judges it again under the guard.
    length = file.readSync(buffer) ?? 0;
  } catch (error) {
    throw fsError("read", path, error);
  } finally {
    file.close();
  }
  const record = decodeLock(buffer.subarray(0, length));
  if (typeof record !== "string") return { kind: "lock", record };
  // Only an unreadable file needs its age.
  info ??= lstat(path);
  return info === undefined ? { kind: "missing" } : corrupt(info, record);
}

function lstat(path: string): Deno.FileInfo | undefined {
  try {
    return Deno.lstatSync(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw fsError("inspect", path, error);
  }
}

function corrupt(info: Deno.FileInfo, reason: string): Entry {
  const mtime = info.mtime?.getTime() ?? 0;
  // A time in the future (clock skew on a shared disk) counts as young: the safe side.
  return { kind: "corrupt", reason, ageMs: Math.max(0, Date.now() - mtime) };
}

/** Judges an entry that is present. Probes the owner's liveness for a readable lock. */
export function judge(
  entry: Exclude<Entry, { kind: "missing" }>,
  cache?: Map<string, OwnerStatus>,
): Verdict {
  switch (entry.kind) {
    case "lock": {
      const status = ownerStatus(entry.record, cache);
      if (status === "dead") return { state: "stale", reason: staleReason(entry.record) };
      if (status === "foreign") {
        return {
          state: "held",
          record: entry.record,
          reason: `held on host ${entry.record.host}; its pid cannot be checked from here`,
        };
      }
      return { state: "held", record: entry.record };
    }
    case "corrupt":
      if (entry.ageMs < WRITE_GRACE_MS) {
        return {
          state: "held",
          reason: `unreadable (${entry.reason}) but younger than ${
            WRITE_GRACE_MS / 1000
          } s: may be being written`,
        };
      }
      return { state: "stale", reason: `corrupt: ${entry.reason}` };
    case "directory":
      return {
        state: "blocked",
        reason: "a directory where a lock file belongs; remove it by hand",
      };
  }
}

function staleReason(record: LockRecord): string {
  return `stale: pid ${record.pid} (unit ${record.unitId}) is gone`;
}
