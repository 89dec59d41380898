/**
 * The per-directory guard: an exclusive kernel lock (`flock`) on `<locks>/.agentlock.guard`
 * under which every removal of a lock file is decided and done. The kernel drops it when its
 * holder dies, so a crash can never leave it held.
 *
 * Operations are written once as generators that yield how long to pause while the guard is
 * busy; {@linkcode runSync} pauses by blocking, {@linkcode runAsync} with a timer.
 *
 * @module
 */

import { fsError, LockDirectoryError } from "./errors.ts";
import { GUARD_NAME, joinPath } from "./paths.ts";

/** A store operation: yields pauses in milliseconds, returns its result. */
export type Op<T> = Generator<number, T, void>;

/** How long a caller waits for a busy guard before reporting it. The guard is held for microseconds. */
const GUARD_TIMEOUT_MS = 10_000;

const sleeper = new Int32Array(new SharedArrayBuffer(4));

/** Runs an operation to completion, blocking the thread during its pauses. */
export function runSync<T>(op: Op<T>): T {
  let step = op.next();
  while (!step.done) {
    Atomics.wait(sleeper, 0, 0, step.value);
    step = op.next();
  }
  return step.value;
}

/** Runs an operation to completion, awaiting a timer during its pauses. */
export async function runAsync<T>(op: Op<T>): Promise<T> {
  let step = op.next();
  while (!step.done) {
    const ms = step.value;
    await new Promise((resolve) => setTimeout(resolve, ms));
    step = op.next();
  }
  return step.value;
}

interface Guard {
  file: Deno.FsFile;
  path: string;
  dev: number;
  ino: number | null;
}

// One open guard file per lock directory, kept for the life of the process.
const guards = new Map<string, Guard>();

/**
 * Runs `critical` while holding the guard of `dir`. `critical` must be synchronous: a second
 * operation of the same thread must never wait for a guard the first one holds.
 */
export function* withGuard<T>(dir: string, critical: () => T): Op<T> {
  const deadline = Date.now() + GUARD_TIMEOUT_MS;
  let pause = 0.05;
  for (;;) {
    const guard = openGuard(dir);
    let locked: boolean;
    try {
      locked = guard.file.tryLockSync(true);
    } catch (error) {
      throw fsError("lock", guard.path, error);
    }
    if (locked) {
      // The directory may have been deleted and made again since the guard was opened: then
      // other processes lock a different file, and this one must be reopened.
      if (isCurrent(guard)) {
        try {
          return critical();
        } finally {
          guard.file.unlockSync();
        }
      }
      guard.file.unlockSync();
      closeGuard(dir);
      continue;
    }
    if (Date.now() > deadline) {
      throw new LockDirectoryError(
        `The guard ${guard.path} stayed locked for ${
          GUARD_TIMEOUT_MS / 1000
        } s; a process holding it ` +
          `may be stopped (see \`fuser ${guard.path}\`); resume or end it`,
      );
    }
    yield pause * (0.5 + Math.random());
    pause = Math.min(pause * 2, 5);
  }
}

function openGuard(dir: string): Guard {
  const known = guards.get(dir);
  if (known) return known;
  const path = joinPath(dir, GUARD_NAME);
  let file: Deno.FsFile;
  try {
    file = openOrCreate(dir, path);
  } catch (error) {
    // Another user's guard file may be read-only for us; flock works on a read-only descriptor.
    if (!(error instanceof Deno.errors.PermissionDenied)) throw fsError("open", path, error);
    try {
      file = Deno.openSync(path, { read: true });
    } catch (error) {
      throw fsError("open", path, error);
    }
  }
  const info = file.statSync();
  const guard = { file, path, dev: info.dev, ino: info.ino };
  guards.set(dir, guard);
  return guard;
}

function openOrCreate(dir: string, path: string): Deno.FsFile {
  const options = { read: true, write: true, create: true, mode: 0o644 };
  try {
    return Deno.openSync(path, options);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
    // The lock directory itself was removed: make it again, as acquiring does.
    Deno.mkdirSync(dir, { recursive: true });
    return Deno.openSync(path, options);
  }
}

function isCurrent(guard: Guard): boolean {
  try {
    const info = Deno.lstatSync(guard.path);
    return info.dev === guard.dev && info.ino === guard.ino;
  } catch {
    return false;
  }
}

function closeGuard(dir: string): void {
  const guard = guards.get(dir);
  if (!guard) return;
  guards.delete(dir);
  try {
    guard.file.close();
  } catch {
    // Already closed: nothing to release.
  }
}
