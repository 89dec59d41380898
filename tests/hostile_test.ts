// Broken or hostile lock directories: every entry is a live lock, a stale one to clean, or
// reported; no call hangs, follows a symlink out of the directory, or reads without bound.

import assert from "node:assert/strict";
import {
  acquire,
  checkLock,
  listLocks,
  LockDirectoryError,
  lockDirSync,
  lockFilenameSync,
  pruneLocks,
  release,
} from "../mod.ts";
import { MAX_LOCK_BYTES } from "../src/format.ts";
import { age, exists, lockPathOf, tempManaDir } from "./_helpers.ts";

const pid = Deno.pid;

/** Plants `write(path)` at the lock name of `filePath`, and returns the lock path. */
function plant(manaDir: string, filePath: string, write: (path: string) => void): string {
  const path = lockPathOf(manaDir, filePath);
  write(path);
  return path;
}

const garbage: [string, (path: string) => void][] = [
  ["an empty file", (p) => Deno.writeFileSync(p, new Uint8Array())],
  ["binary garbage", (p) => Deno.writeFileSync(p, crypto.getRandomValues(new Uint8Array(300)))],
  ["JSON with wrong types", (p) => Deno.writeTextFileSync(p, '{"unit_id":1,"pid":"x"}')],
  ["a JSON array", (p) => Deno.writeTextFileSync(p, "[1,2,3]")],
  [
    "a lock with pid 0",
    (p) => Deno.writeTextFileSync(p, '{"unit_id":"1","pid":0,"file_path":"f","locked_at":1}'),
  ],
  [
    "a lock with pid -1",
    (p) => Deno.writeTextFileSync(p, '{"unit_id":"1","pid":-1,"file_path":"f","locked_at":1}'),
  ],
  [
    "a lock with a pid beyond 32 bits",
    (p) =>
      Deno.writeTextFileSync(p, '{"unit_id":"1","pid":4294967296,"file_path":"f","locked_at":1}'),
  ],
  ["a huge file", (p) => Deno.writeFileSync(p, new Uint8Array(MAX_LOCK_BYTES * 4).fill(0x20))],
];

for (const [what, write] of garbage) {
  Deno.test(`an old lock file that is ${what} is taken over`, async () => {
    const manaDir = tempManaDir();
    const lockPath = plant(manaDir, "f.ts", write);
    age(lockPath, 60);
    assert.equal(await acquire(manaDir, "1.1", pid, "f.ts"), true);
    assert.equal((await checkLock(manaDir, "f.ts"))?.unitId, "1.1");
  });

  Deno.test(`a young lock file that is ${what} is held: it may be half-written`, async () => {
    const manaDir = tempManaDir();
    const lockPath = plant(manaDir, "f.ts", write);
    assert.equal(await acquire(manaDir, "1.1", pid, "f.ts"), false);
    assert.equal(await checkLock(manaDir, "f.ts"), null);
    const report = await pruneLocks(manaDir);
    assert.equal(report.skipped.length, 1);
    assert.match(report.skipped[0].reason, /may be being written/);
    assert.ok(exists(lockPath), "a young unreadable file must stay");
  });
}

Deno.test("a symlink at a lock name is never followed and is replaced, its target untouched", async () => {
  const manaDir = tempManaDir();
  const outside = `${manaDir}/../precious.txt`;
  Deno.writeTextFileSync(
    outside,
    JSON.stringify({ unit_id: "x", pid, file_path: "f.ts", locked_at: 1 }),
  );
  const lockPath = plant(manaDir, "f.ts", (p) => Deno.symlinkSync(outside, p));
  // The target names a live owner; following the link would wrongly report the file as held.
  assert.equal(await checkLock(manaDir, "f.ts"), null);
  assert.ok(!exists(lockPath));
  assert.equal(Deno.readTextFileSync(outside).includes('"unit_id":"x"'), true);
  plant(manaDir, "g.ts", (p) => Deno.symlinkSync("/dev/zero", p));
  assert.equal(await acquire(manaDir, "1.1", pid, "g.ts"), true);
});

Deno.test("a FIFO at a lock name does not hang any call and is taken over", async () => {
  const manaDir = tempManaDir();
  const lockPath = plant(manaDir, "f.ts", (p) => {
    const made = new Deno.Command("mkfifo", { args: [p] }).outputSync();
    assert.equal(made.code, 0);
  });
  assert.deepEqual(await listLocks(manaDir), []);
  assert.ok(!exists(lockPath));
  plant(manaDir, "f.ts", (p) => new Deno.Command("mkfifo", { args: [p] }).outputSync());
  assert.equal(await acquire(manaDir, "1.1", pid, "f.ts"), true);
});

Deno.test("a directory at a lock name is reported, never removed", async () => {
  const manaDir = tempManaDir();
  const lockPath = plant(manaDir, "f.ts", (p) => {
    Deno.mkdirSync(p);
    Deno.writeTextFileSync(`${p}/keep.txt`, "user data");
  });
  await assert.rejects(acquire(manaDir, "1.1", pid, "f.ts"), LockDirectoryError);
  await assert.rejects(checkLock(manaDir, "f.ts"), /is a directory where a lock file belongs/);
  const report = await pruneLocks(manaDir);
  assert.deepEqual(report.skipped.map((s) => s.lockPath), [lockPath]);
  assert.equal(Deno.readTextFileSync(`${lockPath}/keep.txt`), "user data");
});

Deno.test("prune removes stale locks and a dead writer's temporary file, and says why", async () => {
  const manaDir = tempManaDir();
  const dir = lockDirSync(manaDir);
  const name = lockFilenameSync("a.ts");
  const stale = plant(manaDir, "a.ts", (p) =>
    Deno.writeTextFileSync(
      p,
      JSON.stringify({ unit_id: "9", pid: 999_999_999, file_path: "a.ts", locked_at: 1 }),
    ));
  const temp = `${dir}/.${name}.999999998.0123456789abcdef.tmp`;
  Deno.writeTextFileSync(temp, "{");
  const otherFile = `${dir}/notes.txt`;
  Deno.writeTextFileSync(otherFile, "not ours");
  assert.ok(await acquire(manaDir, "1.1", pid, "live.ts"));

  const report = await pruneLocks(manaDir);
  assert.deepEqual(report.live.map((l) => l.info.filePath), ["live.ts"]);
  const reasons = new Map(report.removed.map((r) => [r.lockPath, r.reason]));
  assert.match(reasons.get(stale) ?? "", /stale: pid 999999999 \(unit 9\) is gone/);
  assert.match(reasons.get(temp) ?? "", /temporary file of a writer that died/);
  assert.ok(!exists(stale) && !exists(temp));
  assert.ok(exists(otherFile), "files that are not locks are left alone");
});

Deno.test("a lock directory that is a file gives a clear error", async () => {
  const manaDir = tempManaDir();
  Deno.writeTextFileSync(`${manaDir}/locks`, "");
  await assert.rejects(acquire(manaDir, "1.1", pid, "f.ts"), /exists but is not a directory/);
});

Deno.test("a lock directory deleted while in use is made again", async () => {
  const manaDir = tempManaDir();
  assert.ok(await acquire(manaDir, "1.1", pid, "a.ts"));
  Deno.removeSync(`${manaDir}/locks`, { recursive: true });
  assert.ok(await acquire(manaDir, "1.1", pid, "b.ts"));
  assert.ok(await release(manaDir, "1.1", pid, "b.ts"));
  assert.deepEqual(await listLocks(manaDir), []);
});

Deno.test("release never removes a lock that another owner holds", async () => {
  const manaDir = tempManaDir();
  assert.ok(await acquire(manaDir, "1.1", pid, "a.ts"));
  assert.equal(await release(manaDir, "2.2", pid, "a.ts"), false);
  assert.equal(await release(manaDir, "1.1", pid + 1, "a.ts"), false);
  assert.equal((await checkLock(manaDir, "a.ts"))?.unitId, "1.1");
  assert.equal(await release(manaDir, "1.1", pid, "a.ts"), true);
  assert.equal(await release(manaDir, "1.1", pid, "a.ts"), false);
});

Deno.test("bad arguments are refused before anything is written", async () => {
  const manaDir = tempManaDir();
  await assert.rejects(acquire(manaDir, "", pid, "a.ts"), TypeError);
  for (const bad of [0, -1, 1.5, 2 ** 31, NaN]) {
    await assert.rejects(acquire(manaDir, "1", bad, "a.ts"), RangeError);
  }
  await assert.rejects(acquire(manaDir, "1", pid, ""), TypeError);
  assert.deepEqual([...Deno.readDirSync(manaDir)], []);
});

Deno.test("release after a forced removal and a new holder removes nothing of theirs", async () => {
  const manaDir = tempManaDir();
  const dir = lockDirSync(manaDir);
  assert.ok(await acquire(manaDir, "1.1", pid, "a.ts"));
  // While held, the lock is also linked under this process's temporary name.
  assert.equal([...Deno.readDirSync(dir)].filter((e) => e.name.endsWith(".tmp")).length, 1);
  Deno.removeSync(lockPathOf(manaDir, "a.ts")); // forced away, as `rm` or clearAll would
  assert.ok(await acquire(manaDir, "2.2", 1, "a.ts")); // a new holder: pid 1 is alive
  assert.equal(await release(manaDir, "1.1", pid, "a.ts"), false);
  assert.equal((await checkLock(manaDir, "a.ts"))?.unitId, "2.2");
  assert.deepEqual([...Deno.readDirSync(dir)].filter((e) => e.name.endsWith(".tmp")), []);
});
