/**
 * Output of the command line tool: the JSON shapes, the `list` table, ages and colours.
 *
 * @module
 */

import { readEntry } from "./entry.ts";
import { encodeLock, type LockInfo, type LockRecord } from "./format.ts";

/**
 * A lock as the CLI prints it with `--json`: the keys of the lock file, in the order they are
 * stored, plus `lock_path`. The keys after `locked_at` appear only when the lock file has them
 * (locks written by mana's Rust code have only the first four).
 */
export interface LockJson {
  /** The unit (task) that holds the lock. */
  unit_id: string;
  /** The process that holds the lock. */
  pid: number;
  /** The locked path, as given when it was taken. */
  file_path: string;
  /** When the lock was taken, in Unix seconds. */
  locked_at: number;
  /** Host name of the holder's machine. */
  host?: string;
  /** Linux boot id of the holder's machine. */
  boot_id?: string;
  /** Start time of the holder process, in clock ticks since boot. */
  start_time?: number;
  /** Random per-acquisition token. */
  token?: string;
  /** The lock file. */
  lock_path: string;
}

/** The JSON form of a lock record, with the on-disk key names and order, plus `lock_path`. */
export function lockJson(record: LockRecord, lockPath: string): LockJson {
  const json = JSON.parse(new TextDecoder().decode(encodeLock(record)));
  return { ...json, lock_path: lockPath };
}

/**
 * The full record of a live lock, read again from disk for the keys `LockInfo` leaves out (host,
 * boot id, start time, token). Falls back to `info` when the file changed or cannot be read.
 */
export function fullRecord(info: LockInfo, lockPath: string): LockRecord {
  try {
    const entry = readEntry(lockPath);
    if (
      entry.kind === "lock" && entry.record.unitId === info.unitId &&
      entry.record.pid === info.pid && entry.record.filePath === info.filePath
    ) {
      return entry.record;
    }
  } catch {
    // Only shown to the user: what listLocks returned is enough.
  }
  return { ...info };
}

/** How long ago a lock was taken, e.g. `"3m ago"`; `now` is in Unix seconds. */
export function formatAge(lockedAt: number, now: number): string {
  const seconds = Math.floor(now - lockedAt);
  if (seconds < 1) return "just now";
  if (seconds < 60) return `${seconds}s ago`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m ago`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)}h ago`;
  return `${Math.floor(seconds / 86400)}d ago`;
}

/** Text styles; each is the identity when colour is off. */
export interface Style {
  /** Headings. */
  bold(text: string): string;
  /** Secondary detail, such as ages. */
  dim(text: string): string;
  /** Unit ids. */
  unit(text: string): string;
  /** Good news: acquired, free, released. */
  ok(text: string): string;
  /** A lock held by someone else. */
  held(text: string): string;
  /** Errors. */
  error(text: string): string;
}

const sgr = (code: number) => (text: string) => `\x1b[${code}m${text}\x1b[0m`;
const plain = (text: string) => text;

/** Styles with ANSI colours when `color` is true, else plain text. */
export function makeStyle(color: boolean): Style {
  if (!color) {
    return { bold: plain, dim: plain, unit: plain, ok: plain, held: plain, error: plain };
  }
  return { bold: sgr(1), dim: sgr(2), unit: sgr(36), ok: sgr(32), held: sgr(33), error: sgr(31) };
}

/** Sorts records newest first, then by path, so that the output is stable. */
export function newestFirst<T extends { record: LockRecord }>(rows: T[]): T[] {
  return rows.sort((a, b) =>
    b.record.lockedAt - a.record.lockedAt ||
    (a.record.filePath < b.record.filePath ? -1 : a.record.filePath > b.record.filePath ? 1 : 0)
  );
}

/**
 * The `list` table: unit, pid, host ("-" where unknown), age and path, one lock a line, with a
 * header. Columns are padded to the widest cell; the path comes last and is not padded.
 */
export function lockTable(records: LockRecord[], now: number, style: Style): string {
  const header = ["UNIT", "PID", "HOST", "AGE", "FILE"];
  const rows = records.map((r) => [
    r.unitId,
    String(r.pid),
    r.host ?? "-",
    formatAge(r.lockedAt, now),
    r.filePath,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)));
  const line = (cells: string[], paint: (cell: string, i: number) => string) =>
    cells.map((cell, i) => {
      const padded = i === cells.length - 1 ? cell : cell.padEnd(widths[i]);
      return paint(padded, i);
    }).join("  ").trimEnd();
  const painters = [style.unit, plain, plain, style.dim, plain];
  return [
    line(header, (cell) => style.bold(cell)),
    ...rows.map((row) => line(row, (cell, i) => painters[i](cell))),
  ].join("\n");
}

/** Describes a holder in words, e.g. `unit 1.2 (pid 4567, host devbox, 3m ago)`. */
export function describeHolder(record: LockRecord, now: number, style: Style): string {
  const details = [`pid ${record.pid}`];
  if (record.host !== undefined) details.push(`host ${record.host}`);
  details.push(`locked ${formatAge(record.lockedAt, now)}`);
  return `unit ${style.unit(record.unitId)} (${details.join(", ")})`;
}

/** Replaces line breaks so that a message fits on one line. */
export function oneLine(text: string): string {
  return text.replace(/\s*[\r\n]+\s*/g, " ").trim();
}
