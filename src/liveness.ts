/**
 * Whether a lock's owner is alive. A lock is stale only on proof that its owner is gone: the pid
 * does not exist, the pid now belongs to a process that started later, or the machine has
 * rebooted since. A missing permission or an unexpected error is never such a proof.
 *
 * The last two proofs need `/proc` (Linux), which Deno opens only under `--allow-all`. Without
 * it, a dead owner whose pid was reused keeps its lock until that pid exits: the safe direction.
 *
 * @module
 */

import { LockPermissionError, LockProbeError } from "./errors.ts";
import { isValidPid, type LockRecord } from "./format.ts";
import { assertSupportedPlatform } from "./paths.ts";

/** What a liveness check concluded about a lock's owner. */
export type OwnerStatus = "alive" | "dead" | "foreign";

/**
 * Returns whether a process exists, by sending it signal 0 (`kill(pid, 0)`).
 *
 * A process that exists but belongs to another user (`EPERM`) counts as alive. Probing another
 * process needs `--allow-run`; without it this throws rather than guess, because reading a
 * missing permission as "dead" would let a live lock be deleted.
 *
 * @param pid A process id: a positive integer that fits a signed 32-bit pid.
 * @returns `true` if the process exists, `false` if it does not.
 * @throws {RangeError} When `pid` is not a valid pid (`0` and negatives name process groups).
 * @throws {LockPermissionError} When `--allow-run` is not granted.
 * @throws {LockProbeError} When the probe fails for any other reason.
 *
 * @example
 * ```ts
 * import { isProcessAlive } from "@agentlock/core";
 *
 * console.log(isProcessAlive(Deno.pid)); // true
 * ```
 */
export function isProcessAlive(pid: number): boolean {
  assertSupportedPlatform();
  if (!isValidPid(pid)) {
    throw new RangeError(`Invalid pid ${pid}: expected an integer from 1 to 2147483647`);
  }
  if (pid === Deno.pid) return true;
  if (!runGranted && !(runGranted = granted({ name: "run" }))) {
    throw new LockPermissionError(
      `Needs --allow-run to probe whether pid ${pid} is alive; run with --allow-run`,
    );
  }
  try {
    // Signal 0 is not in Deno's Signal union, but Deno passes it to kill(2) unchanged.
    Deno.kill(pid, 0 as unknown as Deno.Signal);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false; // ESRCH
    if (error instanceof Deno.errors.PermissionDenied) return true; // EPERM: exists, not ours
    if (error instanceof Deno.errors.NotCapable) {
      throw new LockPermissionError(
        `Needs --allow-run to probe whether pid ${pid} is alive; run with --allow-run`,
        { cause: error },
      );
    }
    throw new LockProbeError(`Could not probe pid ${pid}: ${String(error)}`, { cause: error });
  }
}

/**
 * Decides whether the owner of a lock is alive, dead, or on another machine.
 *
 * A lock written on another host is `"foreign"`: this host's pids say nothing about it. On the
 * same host, a different boot id means the machine rebooted since the lock was taken, and a
 * different start time means its pid was reused: both prove the owner dead. `cache` lets a scan of
 * many locks probe each owner once.
 */
export function ownerStatus(record: LockRecord, cache?: Map<string, OwnerStatus>): OwnerStatus {
  const key = cache && `${record.pid}\0${record.startTime}\0${record.host}\0${record.bootId}`;
  const cached = key && cache.get(key);
  if (cached) return cached;
  const status = probeOwner(record);
  if (key) cache.set(key, status);
  return status;
}

function probeOwner(record: LockRecord): OwnerStatus {
  if (record.host !== undefined) {
    const host = thisHost();
    if (host === undefined) {
      throw new LockPermissionError(
        `Needs --allow-sys=hostname to tell whether pid ${record.pid}'s lock was taken on this ` +
          `host; run with --allow-sys=hostname`,
      );
    }
    if (record.host !== host) return "foreign";
  }
  const bootId = thisBootId();
  if (record.bootId !== undefined && bootId !== undefined && record.bootId !== bootId) {
    return "dead";
  }
  if (record.pid === Deno.pid) {
    const own = processStartTime(Deno.pid);
    return record.startTime === undefined || own === undefined || own === record.startTime
      ? "alive"
      : "dead";
  }
  if (!isProcessAlive(record.pid)) return "dead";
  if (record.startTime !== undefined) {
    const startTime = processStartTime(record.pid);
    if (startTime === null) return "dead";
    if (startTime !== undefined && startTime !== record.startTime) return "dead";
  }
  return "alive";
}

/**
 * The identity fields to record for a lock held by `pid`: this host's name and boot id, and the
 * process's start time. Each is left out where the platform or the permissions do not give it.
 */
export function ownerIdentity(pid: number): Pick<LockRecord, "host" | "bootId" | "startTime"> {
  const identity: Pick<LockRecord, "host" | "bootId" | "startTime"> = {};
  const host = thisHost();
  if (host !== undefined) identity.host = host;
  const bootId = thisBootId();
  if (bootId !== undefined) identity.bootId = bootId;
  const startTime = processStartTime(pid);
  if (typeof startTime === "number") identity.startTime = startTime;
  return identity;
}

// Only a grant is remembered: a revoked permission then surfaces as NotCapable from Deno.kill.
let runGranted = false;
let hostCache: string | null | undefined;
let bootIdCache: string | null | undefined;
let ownStartTime: number | null | undefined;

/** This machine's host name, or `undefined` without `--allow-sys=hostname`. */
export function thisHost(): string | undefined {
  if (hostCache === undefined) {
    hostCache = granted({ name: "sys", kind: "hostname" }) ? Deno.hostname() : null;
  }
  return hostCache ?? undefined;
}

function thisBootId(): string | undefined {
  if (bootIdCache === undefined) bootIdCache = readProc("/proc/sys/kernel/random/boot_id") ?? null;
  return bootIdCache ?? undefined;
}

/**
 * Start time of `pid` in clock ticks since boot, from `/proc/<pid>/stat`. `null` when the process
 * does not exist; `undefined` when it cannot be known (not Linux, or `/proc` not readable).
 */
function processStartTime(pid: number): number | null | undefined {
  if (pid === Deno.pid && ownStartTime !== undefined) return ownStartTime ?? undefined;
  if (!procReadable()) return undefined;
  let stat: string;
  try {
    stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  } catch (error) {
    return error instanceof Deno.errors.NotFound ? null : undefined;
  }
  // The command name (field 2) may hold spaces and parentheses; fields after the last ")" don't.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const startTime = Number(fields[19]); // field 22 of proc(5)
  const result = Number.isSafeInteger(startTime) ? startTime : undefined;
  if (pid === Deno.pid) ownStartTime = result ?? null;
  return result;
}

let procReadableCache: boolean | undefined;

/**
 * Deno lets a program read `/proc` only under `--allow-all`. Asking first, permission by
 * permission, keeps a narrower grant from ending in an interactive prompt.
 */
function procReadable(): boolean {
  procReadableCache ??= Deno.build.os === "linux" &&
    ALL_PERMISSIONS.every((name) => granted({ name } as Deno.PermissionDescriptor));
  return procReadableCache;
}

const ALL_PERMISSIONS = ["read", "write", "net", "env", "sys", "run", "ffi"] as const;

function readProc(path: string): string | undefined {
  if (!procReadable()) return undefined;
  try {
    return Deno.readTextFileSync(path).trim() || undefined;
  } catch {
    return undefined;
  }
}

// Querying first means a missing permission never turns into an interactive prompt.
function granted(descriptor: Deno.PermissionDescriptor): boolean {
  return Deno.permissions.querySync(descriptor).state === "granted";
}
