// lock(), lockSync() and FileLock: scoped release, verify, double release, shared acquisitions,
// timeout and abort, compromise detection, and path spelling.

import assert from "node:assert/strict";
import {
  acquire,
  checkLock,
  type CompromisedEvent,
  type FileLock,
  lock,
  lockSync,
  LockTimeoutError,
  projectPath,
  release,
} from "../mod.ts";
import { openWatcherCount, setWatching } from "../src/wait.ts";
import { DENO, exists, plantLock, tempManaDir } from "./_helpers.ts";
import { CHILD_PERMISSIONS, LineReader } from "./fixtures/child.ts";
import { within } from "./fixtures/measure.ts";

const pid = Deno.pid;
const FILE = "src/a.ts";
const MONITOR_CHILD = new URL("./fixtures/monitor_child.ts", import.meta.url).pathname;

Deno.test("lock: holds until released, and verify follows the lock file", async () => {
  const manaDir = tempManaDir();
  const held = await lock(manaDir, FILE, { unitId: "1.1" });
  assert.equal(held.info.unitId, "1.1");
  assert.equal(held.info.pid, pid);
  assert.equal(held.info.filePath, FILE);
  assert(exists(held.lockPath));
  assert(await held.verify());
  assert(held.verifySync());
  assert.equal(held.released, false);
  assert.equal((await checkLock(manaDir, FILE))?.unitId, "1.1");
  assert.equal(await held.release(), true);
  assert.equal(held.released, true);
  assert(!exists(held.lockPath));
  assert.equal(await held.verify(), false);
});

Deno.test("lock: await using releases at the end of the block, also on a throw", async () => {
  const manaDir = tempManaDir();
  let lockPath = "";
  {
    await using held = await lock(manaDir, FILE, { unitId: "1.1" });
    lockPath = held.lockPath;
    assert(exists(lockPath));
  }
  assert(!exists(lockPath));

  const edit = async () => {
    await using held = await lock(manaDir, FILE, { unitId: "1.1" });
    assert(exists(held.lockPath));
    throw new Error("the edit failed");
  };
  await assert.rejects(edit(), /the edit failed/);
  assert(!exists(lockPath));
  assert.equal(await checkLock(manaDir, FILE), null);
});

Deno.test("lockSync: tries once, and using releases at the end of the block", async () => {
  const manaDir = tempManaDir();
  let lockPath = "";
  {
    using held = lockSync(manaDir, FILE, { unitId: "1.1" });
    assert(held);
    lockPath = held.lockPath;
    assert.equal(lockSync(manaDir, FILE, { unitId: "1.2" }), null);
  }
  assert(!exists(lockPath));
  assert(await acquire(manaDir, "1.2", pid, FILE));
});

Deno.test("lock: releasing twice is harmless", async () => {
  const manaDir = tempManaDir();
  const held = await lock(manaDir, FILE, { unitId: "1.1" });
  const [first, second] = await Promise.all([held.release(), held.release()]);
  assert.deepEqual([first, second], [true, false]);
  assert.equal(await held.release(), false);
  assert.equal(held.releaseSync(), false);
  await held[Symbol.asyncDispose]();
  held[Symbol.dispose]();
  assert.equal(await checkLock(manaDir, FILE), null);

  // A later lock of the same file is untouched by the old handle.
  const next = await lock(manaDir, FILE, { unitId: "1.1" });
  assert.equal(await held.release(), false);
  assert(await next.verify());
  await next.release();
});

Deno.test("lock: never removes a lock that someone else now holds", async () => {
  const manaDir = tempManaDir();
  const held = await lock(manaDir, FILE, { unitId: "1.1" });
  Deno.removeSync(held.lockPath); // as `clearAll` or a person would
  const other = await lock(manaDir, FILE, { unitId: "2.1" });
  assert.equal(await held.verify(), false);
  assert.equal(await held.release(), false);
  assert(await other.verify());
  assert.equal((await checkLock(manaDir, FILE))?.unitId, "2.1");
  await other.release();

  // The same owner taking the lock again is a new acquisition, not the lost one.
  const lost = await lock(manaDir, FILE, { unitId: "1.1" });
  Deno.removeSync(lost.lockPath);
  const again = await lock(manaDir, FILE, { unitId: "1.1" });
  assert.equal(lost.releaseSync(), false);
  assert(await again.verify());
  await again.release();
  assert.equal(await checkLock(manaDir, FILE), null);
});

Deno.test("lock: handles of one owner share the lock until the last is released", async () => {
  const manaDir = tempManaDir();
  const first = await lock(manaDir, FILE, { unitId: "1.1" });
  const second = await lock(manaDir, FILE, { unitId: "1.1", timeoutMs: 0 });
  assert.equal(await second.release(), true);
  assert(exists(first.lockPath));
  assert(await first.verify());
  assert.equal(await first.release(), true);
  assert(!exists(first.lockPath));

  // Also when the mana directory is spelled two ways.
  const one = await lock(manaDir, FILE, { unitId: "1.1" });
  const other = await lock(`${manaDir}/../.mana`, FILE, { unitId: "1.1" });
  assert.equal(await other.release(), true);
  assert(await one.verify());
  assert.equal(await one.release(), true);
  assert.equal(await checkLock(manaDir, FILE), null);

  // A lock taken with acquire() is adopted: releasing the handle releases it.
  assert(await acquire(manaDir, "1.1", pid, FILE));
  const adopted = await lock(manaDir, FILE, { unitId: "1.1" });
  assert(await adopted.verify());
  assert.equal(await adopted.release(), true);
  assert.equal(await checkLock(manaDir, FILE), null);
});

Deno.test("lock: waits for the holder and takes the lock when it is released", async () => {
  const manaDir = tempManaDir();
  const holder = await lock(manaDir, FILE, { unitId: "holder" });
  const waiting = lock(manaDir, FILE, { unitId: "waiter" });
  setTimeout(() => holder.release(), 20);
  await using held = await within(waiting, 5_000, "the hand-off");
  assert(await held.verify());
});

Deno.test("lock: timeoutMs throws LockTimeoutError naming the holder", async () => {
  const manaDir = tempManaDir();
  assert(await acquire(manaDir, "holder", pid, FILE));
  for (const timeoutMs of [0, 50]) {
    await assert.rejects(lock(manaDir, FILE, { unitId: "waiter", timeoutMs }), (error) => {
      assert(error instanceof LockTimeoutError);
      assert.equal(error.filePath, FILE);
      assert.equal(error.holder?.unitId, "holder");
      assert.match(error.message, /still locked by unit holder/);
      return true;
    });
  }
  assert.equal((await checkLock(manaDir, FILE))?.unitId, "holder");
});

Deno.test("lock: an abort rejects with the signal's reason", async () => {
  const manaDir = tempManaDir();
  assert(await acquire(manaDir, "holder", pid, FILE));
  const controller = new AbortController();
  const reason = new Error("cancelled");
  const waiting = lock(manaDir, FILE, { unitId: "waiter", signal: controller.signal });
  setTimeout(() => controller.abort(reason), 20);
  await assert.rejects(waiting, (error) => error === reason);
  assert.equal((await checkLock(manaDir, FILE))?.unitId, "holder");
});

/** A handle whose onCompromised callback resolves the returned promise. */
async function watched(manaDir: string): Promise<[FileLock, Promise<CompromisedEvent>]> {
  let report!: (event: CompromisedEvent) => void;
  const compromised = new Promise<CompromisedEvent>((resolve) => report = resolve);
  const held = await lock(manaDir, FILE, { unitId: "1.1", onCompromised: report });
  return [held, compromised];
}

Deno.test("onCompromised: reports a lock file that was removed", async () => {
  const manaDir = tempManaDir();
  const [held, compromised] = await watched(manaDir);
  Deno.removeSync(held.lockPath);
  const event = await within(compromised, 5_000, "the compromise report");
  assert.equal(event.reason, "removed");
  assert.equal(event.lock, held);
  assert.equal(event.holder, null);
  assert.equal(await held.release(), false);
  assert.equal(openWatcherCount(), 0);
});

Deno.test("onCompromised: reports a lock file that was replaced", async () => {
  const manaDir = tempManaDir();
  const [held, compromised] = await watched(manaDir);
  // Replaced as lock writers do, by a new file under the lock name.
  Deno.removeSync(held.lockPath);
  plantLock(manaDir, { unitId: "9.9", pid, filePath: FILE, lockedAt: 1 });
  const event = await within(compromised, 5_000, "the compromise report");
  assert.equal(event.reason, "replaced");
  assert.equal(event.holder?.unitId, "9.9");
  assert.equal(await held.release(), false);
  assert.equal((await checkLock(manaDir, FILE))?.unitId, "9.9");
});

Deno.test("onCompromised: the periodic check finds a loss when no watcher runs", async () => {
  const manaDir = tempManaDir();
  setWatching(false);
  try {
    const [held, compromised] = await watched(manaDir);
    Deno.removeSync(held.lockPath);
    const event = await within(compromised, 5_000, "the compromise report");
    assert.equal(event.reason, "removed");
    await held.release();
  } finally {
    setWatching(true);
  }
});

Deno.test("onCompromised: is not called for the handle's own release", async () => {
  const manaDir = tempManaDir();
  let calls = 0;
  const held = await lock(manaDir, FILE, { unitId: "1.1", onCompromised: () => calls++ });
  await held.release();
  const other = await lock(manaDir, FILE, { unitId: "2.1" });
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.equal(calls, 0);
  await other.release();
  assert.equal(openWatcherCount(), 0);
});

Deno.test("onCompromised: the monitor does not keep a process alive", async () => {
  const manaDir = tempManaDir();
  const child = new Deno.Command(DENO, {
    args: ["run", ...CHILD_PERMISSIONS, MONITOR_CHILD, manaDir, FILE],
    stdout: "piped",
  }).spawn();
  const output = new LineReader(child.stdout);
  assert.equal(await output.next(), "held");
  const ended = within(child.status, 10_000, "the exit of the monitoring process");
  const status = await ended.catch((error) => {
    child.kill("SIGKILL");
    throw error;
  });
  await output.rest();
  assert(status.success);
});

Deno.test("paths: hashed as given by default, one spelling with normalize", async () => {
  const manaDir = tempManaDir();
  const root = manaDir.slice(0, -"/.mana".length);

  // Default: three spellings, three locks (as in mana's Rust code).
  const dotted = await lock(manaDir, "./src/a.ts", { unitId: "1.1" });
  const plain = lockSync(manaDir, "src/a.ts", { unitId: "2.1" });
  const absolute = lockSync(manaDir, `${root}/src/a.ts`, { unitId: "3.1" });
  assert(plain && absolute);
  for (const held of [dotted, plain, absolute]) await held.release();

  // normalize: every spelling locks "src/a.ts", which a raw "src/a.ts" lock excludes.
  const normalized = await lock(manaDir, `${root}/src/../src//a.ts`, {
    unitId: "1.1",
    normalize: true,
  });
  assert.equal(normalized.info.filePath, "src/a.ts");
  assert.equal(lockSync(manaDir, "src/a.ts", { unitId: "2.1" }), null);
  assert.equal((await checkLock(manaDir, "src/a.ts"))?.unitId, "1.1");
  await assert.rejects(
    lock(manaDir, `${root}/./src/a.ts`, { unitId: "2.1", normalize: true, timeoutMs: 0 }),
    LockTimeoutError,
  );
  await normalized.release();
  assert(await acquire(manaDir, "2.1", pid, "src/a.ts"));
  await release(manaDir, "2.1", pid, "src/a.ts");
});

Deno.test("projectPath: spells a path relative to the parent of the mana directory", () => {
  const manaDir = tempManaDir();
  const root = manaDir.slice(0, -"/.mana".length);
  assert.equal(projectPath(manaDir, `${root}/src/a.ts`), "src/a.ts");
  assert.equal(projectPath(`${manaDir}/`, `${root}//src/./b/../a.ts/`), "src/a.ts");
  assert.equal(projectPath(manaDir, root), ".");
  assert.equal(projectPath(manaDir, "/etc/hosts"), "/etc/hosts");
  assert.equal(projectPath(manaDir, `${root}-other/a.ts`), `${root}-other/a.ts`);
  assert.equal(
    projectPath(manaDir, `${root}/../x.ts`),
    `${root.slice(0, root.lastIndexOf("/"))}/x.ts`,
  );
  // Relative paths are resolved against the current directory.
  assert.equal(projectPath(".mana", "./src/a.ts"), "src/a.ts");
  assert.equal(projectPath(".mana", "src/a.ts"), "src/a.ts");
  assert.equal(projectPath(".mana", `${Deno.cwd()}/src/a.ts`), "src/a.ts");
  assert.throws(() => projectPath(manaDir, ""), TypeError);
});

Deno.test("lock: rejects bad options", async () => {
  const manaDir = tempManaDir();
  await assert.rejects(lock(manaDir, FILE, { unitId: "" }), TypeError);
  await assert.rejects(lock(manaDir, FILE, { unitId: "1.1", pid: -1 }), RangeError);
  await assert.rejects(lock(manaDir, FILE, { unitId: "1.1", timeoutMs: -5 }), RangeError);
  await assert.rejects(
    lock(manaDir, FILE, { unitId: "1.1", onCompromised: "yes" as unknown as () => void }),
    TypeError,
  );
  assert.throws(() => lockSync(manaDir, FILE, undefined as never), TypeError);
  assert.equal(await checkLock(manaDir, FILE), null);
});
