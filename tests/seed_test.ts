// The nine tests of mana-core 0.3.2's locks module, ported one for one.

import assert from "node:assert/strict";
import { acquire, checkLock, clearAll, listLocks, releaseAllForUnit } from "../mod.ts";
import { exists, plantLock, tempManaDir } from "./_helpers.ts";

const pid = Deno.pid;

Deno.test("seed: acquire and release via unit", async () => {
  const manaDir = tempManaDir();
  assert(await acquire(manaDir, "1.1", pid, "/tmp/test.rs"));
  const info = await checkLock(manaDir, "/tmp/test.rs");
  assert.deepEqual(info?.unitId, "1.1");
  await releaseAllForUnit(manaDir, "1.1");
  assert.deepEqual(await checkLock(manaDir, "/tmp/test.rs"), null);
});

Deno.test("seed: release all for unit works", async () => {
  const manaDir = tempManaDir();
  await acquire(manaDir, "2.1", pid, "/tmp/a.rs");
  await acquire(manaDir, "2.1", pid, "/tmp/b.rs");
  await acquire(manaDir, "2.2", pid, "/tmp/c.rs");
  assert.deepEqual(await releaseAllForUnit(manaDir, "2.1"), 2);
  assert((await checkLock(manaDir, "/tmp/c.rs")) !== null);
  assert.deepEqual(await checkLock(manaDir, "/tmp/a.rs"), null);
});

Deno.test("seed: list locks returns all", async () => {
  const manaDir = tempManaDir();
  await acquire(manaDir, "3.1", pid, "/tmp/x.rs");
  await acquire(manaDir, "3.2", pid, "/tmp/y.rs");
  assert.deepEqual((await listLocks(manaDir)).length, 2);
});

Deno.test("seed: clear all removes everything", async () => {
  const manaDir = tempManaDir();
  await acquire(manaDir, "4.1", pid, "/tmp/p.rs");
  await acquire(manaDir, "4.2", pid, "/tmp/q.rs");
  assert.deepEqual(await clearAll(manaDir), 2);
  assert.deepEqual(await listLocks(manaDir), []);
});

Deno.test("seed: stale lock is cleaned", async () => {
  const manaDir = tempManaDir();
  const lockPath = plantLock(manaDir, {
    unitId: "5.1",
    pid: 999_999_999, // no such process: pids stay far below this
    filePath: "/tmp/stale.rs",
    lockedAt: 0,
  });
  assert.deepEqual(await checkLock(manaDir, "/tmp/stale.rs"), null);
  assert(!exists(lockPath));
});

Deno.test("seed: acquire cleans stale and succeeds", async () => {
  const manaDir = tempManaDir();
  plantLock(manaDir, { unitId: "6.1", pid: 999_999_999, filePath: "/tmp/stale2.rs", lockedAt: 0 });
  assert(await acquire(manaDir, "6.2", pid, "/tmp/stale2.rs"));
  assert.deepEqual((await checkLock(manaDir, "/tmp/stale2.rs"))?.unitId, "6.2");
});

Deno.test("seed: same owner re-acquire is idempotent", async () => {
  const manaDir = tempManaDir();
  assert(await acquire(manaDir, "7.1", pid, "/tmp/idem.rs"));
  assert(await acquire(manaDir, "7.1", pid, "/tmp/idem.rs"));
  assert.deepEqual((await checkLock(manaDir, "/tmp/idem.rs"))?.unitId, "7.1");
});

Deno.test("seed: different owner blocked by live lock", async () => {
  const manaDir = tempManaDir();
  assert(await acquire(manaDir, "8.1", pid, "/tmp/contested.rs"));
  assert(!(await acquire(manaDir, "8.2", pid + 1, "/tmp/contested.rs")));
});

Deno.test("seed: list locks filters stale", async () => {
  const manaDir = tempManaDir();
  await acquire(manaDir, "9.1", pid, "/tmp/live.rs");
  const stalePath = plantLock(manaDir, {
    unitId: "9.2",
    pid: 999_999_999,
    filePath: "/tmp/ghost.rs",
    lockedAt: 0,
  });
  const locks = await listLocks(manaDir);
  assert.deepEqual(locks.length, 1);
  assert.deepEqual(locks[0].info.unitId, "9.1");
  assert(!exists(stalePath));
});
