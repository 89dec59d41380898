/**
 * The on-disk lock format shared with mana-core's Rust code: pretty-printed JSON (two-space
 * indent, as `serde_json::to_string_pretty` writes it) with `unit_id`, `pid`, `file_path` and
 * `locked_at` first. The extra keys written here are ignored by Rust and optional when read.
 *
 * @module
 */

/** Information stored in each lock file. */
export interface LockInfo {
  /** The unit (task) that holds the lock, e.g. `"1.1"`. */
  unitId: string;
  /** The process that holds the lock. */
  pid: number;
  /** The locked path, exactly as given to `acquire` (it is hashed as is). */
  filePath: string;
  /** When the lock was taken, in Unix seconds. */
  lockedAt: number;
}

/** A lock with its file system path. */
export interface ActiveLock {
  /** What the lock file says. */
  info: LockInfo;
  /** The lock file. */
  lockPath: string;
}

/** A lock file as read or written here: the mana fields plus the optional identity fields. */
export interface LockRecord extends LockInfo {
  /** Host name of the machine the holder runs on. */
  host?: string;
  /** Linux boot id of that machine, so that a lock from before a reboot is known to be stale. */
  bootId?: string;
  /** Start time of the holder process (clock ticks since boot), to tell a reused pid. */
  startTime?: number;
  /** Random per-acquisition token: tells this lock file from any later one with the same owner. */
  token?: string;
}

/** Largest accepted lock file; anything longer is corrupt. Keeps every read bounded. */
export const MAX_LOCK_BYTES = 64 * 1024;

/** Largest pid the kernel can hand out fits in a signed 32-bit integer. */
const MAX_PID = 2 ** 31 - 1;

/**
 * Whether `pid` can name one real process: a positive integer that fits a signed 32-bit pid.
 * `0` and negative numbers name process groups for `kill`, so they are never valid here.
 */
export function isValidPid(pid: unknown): pid is number {
  return typeof pid === "number" && Number.isInteger(pid) && pid >= 1 && pid <= MAX_PID;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/** Serialises a lock record in the byte layout mana's Rust code writes, extra keys last. */
export function encodeLock(record: LockRecord): Uint8Array {
  const json: Record<string, unknown> = {
    unit_id: record.unitId,
    pid: record.pid,
    file_path: record.filePath,
    locked_at: record.lockedAt,
  };
  if (record.host !== undefined) json.host = record.host;
  if (record.bootId !== undefined) json.boot_id = record.bootId;
  if (record.startTime !== undefined) json.start_time = record.startTime;
  if (record.token !== undefined) json.token = record.token;
  return encoder.encode(JSON.stringify(json, null, 2));
}

/**
 * Parses a lock file. Returns the record, or a string saying why the bytes are not a valid lock
 * (empty, not UTF-8, not JSON, a missing or mistyped field, an impossible pid).
 */
export function decodeLock(bytes: Uint8Array): LockRecord | string {
  if (bytes.length === 0) return "empty file";
  if (bytes.length > MAX_LOCK_BYTES) return `larger than ${MAX_LOCK_BYTES} bytes`;
  let value: unknown;
  try {
    value = JSON.parse(decoder.decode(bytes));
  } catch {
    return "not valid UTF-8 JSON";
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return "not a JSON object";
  }
  const json = value as Record<string, unknown>;
  if (typeof json.unit_id !== "string") return "unit_id is not a string";
  if (!isValidPid(json.pid)) return "pid is not a positive 32-bit integer";
  if (typeof json.file_path !== "string") return "file_path is not a string";
  if (!Number.isSafeInteger(json.locked_at)) return "locked_at is not an integer";
  const record: LockRecord = {
    unitId: json.unit_id,
    pid: json.pid,
    filePath: json.file_path,
    lockedAt: json.locked_at as number,
  };
  // Identity fields of the wrong type are dropped: knowing less only makes the liveness check
  // more conservative, never less.
  if (typeof json.host === "string") record.host = json.host;
  if (typeof json.boot_id === "string") record.bootId = json.boot_id;
  if (Number.isSafeInteger(json.start_time)) record.startTime = json.start_time as number;
  if (typeof json.token === "string") record.token = json.token;
  return record;
}

/** Strips the identity fields, leaving the four fields every mana lock has. */
export function toLockInfo(record: LockRecord): LockInfo {
  return {
    unitId: record.unitId,
    pid: record.pid,
    filePath: record.filePath,
    lockedAt: record.lockedAt,
  };
}

/** Throws unless `unitId` is a non-empty string. */
export function checkUnit(unitId: string): void {
  if (typeof unitId !== "string" || unitId.length === 0) {
    throw new TypeError("unitId must be a non-empty string");
  }
}

/** Throws unless the owner is a non-empty unit id and a valid pid. */
export function checkOwner(unitId: string, pid: number): void {
  checkUnit(unitId);
  if (!isValidPid(pid)) {
    throw new RangeError(`Invalid pid ${pid}: expected an integer from 1 to 2147483647`);
  }
}
