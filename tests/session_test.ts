// LockSession: release on close and on every way a process ends, except SIGKILL.

import assert from "node:assert/strict";
import { acquire, checkLock, LockError, LockSession } from "../mod.ts";
import { DENO, exists, tempManaDir } from "./_helpers.ts";
import { CHILD_PERMISSIONS, LineReader } from "./fixtures/child.ts";
import { lockFileNames, within } from "./fixtures/measure.ts";

const pid = Deno.pid;
const CHILD = new URL("./fixtures/session_child.ts", import.meta.url).pathname;
const FILES = ["src/a.ts", "src/b.ts", "src/c.ts"];

Deno.test("LockSession: close releases every lock taken through it", async () => {
  const manaDir = tempManaDir();
  const session = new LockSession(manaDir, { unitId: "1.1" });
  const [a, b] = [await session.lock("src/a.ts"), await session.lock("src/b.ts")];
  const c = session.lockSync("src/c.ts");
  assert(c);
  assert.equal(session.locks.length, 3);
  assert.equal(await b.release(), true); // released by hand: the session forgets it
  assert.deepEqual(session.locks, [a, c]);
  assert.equal(lockFileNames(manaDir).length, 2);

  assert.equal(await session.close(), 2);
  assert(session.closed);
  assert(a.released && c.released);
  assert.deepEqual(lockFileNames(manaDir), []);
  assert.equal(await session.close(), 0);
  assert.equal(session.closeSync(), 0);
  await assert.rejects(session.lock("src/a.ts"), LockError);
  assert.throws(() => session.lockSync("src/a.ts"), LockError);
});

Deno.test("LockSession: await using closes it at the end of the block, also on a throw", async () => {
  const manaDir = tempManaDir();
  const edit = async () => {
    await using session = new LockSession(manaDir, { unitId: "1.1" });
    for (const file of FILES) await session.lock(file);
    assert.equal(lockFileNames(manaDir).length, 3);
    throw new Error("the edit failed");
  };
  await assert.rejects(edit(), /the edit failed/);
  assert.deepEqual(lockFileNames(manaDir), []);

  {
    using session = new LockSession(manaDir, { unitId: "1.1", normalize: true });
    const root = manaDir.slice(0, -"/.mana".length);
    const held = session.lockSync(`${root}/./src//a.ts`);
    assert.equal(held?.info.filePath, "src/a.ts");
  }
  assert.deepEqual(lockFileNames(manaDir), []);
});

Deno.test("LockSession: closing rejects waits still pending", async () => {
  const manaDir = tempManaDir();
  assert(await acquire(manaDir, "holder", pid, "src/a.ts"));
  const session = new LockSession(manaDir, { unitId: "1.1" });
  const waiting = session.lock("src/a.ts");
  setTimeout(() => session.close(), 20);
  await assert.rejects(waiting, LockError);
  assert.equal((await checkLock(manaDir, "src/a.ts"))?.unitId, "holder");
});

Deno.test("LockSession: rejects bad options", () => {
  assert.throws(() => new LockSession(tempManaDir(), { unitId: "" }), TypeError);
  assert.throws(
    () => new LockSession(tempManaDir(), { unitId: "1.1", signals: ["SIGKILL" as "SIGINT"] }),
    TypeError,
  );
});

/**
 * Runs session_child.ts holding FILES, waits for "ready", sends `signal` if given, and returns
 * its exit code and stderr.
 */
async function runChild(
  manaDir: string,
  mode: string,
  signal?: Deno.Signal,
): Promise<{ code: number; stderr: string }> {
  const child = new Deno.Command(DENO, {
    args: ["run", ...CHILD_PERMISSIONS, CHILD, manaDir, mode, ...FILES],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stdout = new LineReader(child.stdout);
  const stderr = new Response(child.stderr).text();
  try {
    assert.equal(await within(stdout.next(), 10_000, "the child's ready line"), "ready");
    if (signal) {
      // The locks are on disk while the child runs.
      assert.equal(lockFileNames(manaDir).length, FILES.length);
      child.kill(signal);
    }
    const { code } = await within(child.status, 10_000, "the child's exit");
    await stdout.rest();
    return { code, stderr: await stderr };
  } catch (error) {
    child.kill("SIGKILL");
    await child.status;
    throw new Error(`the child failed: ${await stderr}`, { cause: error });
  }
}

const endings: { name: string; mode: string; signal?: Deno.Signal; code: number }[] = [
  { name: "SIGTERM", mode: "wait", signal: "SIGTERM", code: 143 },
  { name: "SIGINT", mode: "wait", signal: "SIGINT", code: 130 },
  { name: "SIGHUP", mode: "wait", signal: "SIGHUP", code: 129 },
  { name: "the end of the program", mode: "return", code: 0 },
  { name: "Deno.exit", mode: "exit", code: 7 },
  { name: "an uncaught error", mode: "throw", code: 1 },
  { name: "an unhandled rejection", mode: "reject", code: 1 },
];

for (const { name, mode, signal, code } of endings) {
  Deno.test(`LockSession: a child ended by ${name} leaves no lock behind`, async () => {
    const manaDir = tempManaDir();
    const result = await runChild(manaDir, mode, signal);
    assert.equal(result.code, code, result.stderr);
    assert.deepEqual(lockFileNames(manaDir), []);
  });
}

Deno.test("LockSession: a child killed with SIGKILL leaves its locks, which are taken over", async () => {
  const manaDir = tempManaDir();
  const child = new Deno.Command(DENO, {
    args: ["run", ...CHILD_PERMISSIONS, CHILD, manaDir, "wait", ...FILES],
    stdout: "piped",
  }).spawn();
  const stdout = new LineReader(child.stdout);
  assert.equal(await stdout.next(), "ready");
  child.kill("SIGKILL");
  assert.equal((await child.status).signal, "SIGKILL");
  await stdout.rest();

  const left = lockFileNames(manaDir);
  assert.equal(left.length, FILES.length);
  for (const file of FILES) assert(await acquire(manaDir, "next", pid, file));
  for (const file of FILES) assert.equal((await checkLock(manaDir, file))?.unitId, "next");
  assert(left.every((name) => exists(`${manaDir}/locks/${name}`)));
});
