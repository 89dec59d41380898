// Liveness probing: stale only on proof that the owner is gone, never on a missing permission.

import assert from "node:assert/strict";
import { acquire, checkLock, isProcessAlive, pruneLocks } from "../mod.ts";
import { deadPid, DENO, exists, plantLock, ROOT, runScript, tempManaDir } from "./_helpers.ts";

Deno.test("isProcessAlive: this process and pid 1 are alive, an exited child is not", async () => {
  assert.equal(isProcessAlive(Deno.pid), true);
  assert.equal(isProcessAlive(1), true);
  assert.equal(isProcessAlive(await deadPid()), false);
});

Deno.test("isProcessAlive refuses pids that would signal a process group", () => {
  for (const pid of [0, -1, -42, 1.5, 2 ** 31, NaN, Infinity]) {
    assert.throws(() => isProcessAlive(pid), RangeError);
  }
});

// As root every kill(0) succeeds; a child with privileges dropped sees EPERM for pid 1.
const uid = Number(
  new TextDecoder().decode(
    new Deno.Command("id", { args: ["-u"], stdout: "piped" }).outputSync().stdout,
  ),
);
const canDropPrivileges = uid === 0 &&
  new Deno.Command("id", { args: ["-u", "nobody"], stdout: "null", stderr: "null" }).outputSync()
    .success;

Deno.test({
  name: "a process of another user (EPERM) counts as alive",
  ignore: uid === 0 && !canDropPrivileges,
  fn() {
    if (uid !== 0) {
      assert.equal(isProcessAlive(1), true); // pid 1 is root's: kill(1, 0) gives EPERM
      return;
    }
    const script = `import { isProcessAlive } from "${ROOT}mod.ts"; ` +
      `try { Deno.kill(1, 0); console.log("no EPERM"); } ` +
      `catch (e) { console.log(e.name, isProcessAlive(1)); }`;
    const out = new Deno.Command("setpriv", {
      args: [
        "--reuid=nobody",
        "--regid=nogroup",
        "--clear-groups",
        DENO,
        "eval",
        "--allow-run",
        "--allow-read",
        script,
      ],
      env: { DENO_DIR: Deno.makeTempDirSync(), HOME: "/tmp" },
      stdout: "piped",
      stderr: "piped",
    }).outputSync();
    const stdout = new TextDecoder().decode(out.stdout).trim();
    assert.equal(stdout, "PermissionDenied true", new TextDecoder().decode(out.stderr));
  },
});

Deno.test("a lock of a dead pid is stale; the same pid alive keeps it", async () => {
  const manaDir = tempManaDir();
  const dead = await deadPid();
  plantLock(manaDir, { unitId: "1", pid: dead, filePath: "a.ts", lockedAt: 1 });
  assert.equal(await checkLock(manaDir, "a.ts"), null);
  plantLock(manaDir, { unitId: "1", pid: 1, filePath: "b.ts", lockedAt: 1 });
  assert.equal((await checkLock(manaDir, "b.ts"))?.pid, 1);
});

Deno.test("a lock taken on another host is never judged by this host's pids", async () => {
  const manaDir = tempManaDir();
  const lockPath = plantLock(manaDir, {
    unitId: "1",
    pid: 999_999_999,
    filePath: "a.ts",
    lockedAt: 1,
    host: `not-${Deno.hostname()}`,
  });
  assert.equal(await acquire(manaDir, "2", Deno.pid, "a.ts"), false);
  assert.equal((await checkLock(manaDir, "a.ts"))?.pid, 999_999_999);
  const report = await pruneLocks(manaDir);
  assert.equal(report.live.length, 1);
  assert.ok(exists(lockPath));
});

Deno.test("with /proc readable, a reused pid or a reboot proves the owner dead", async () => {
  // Deno reads /proc only under --allow-all, so the check runs in such a child.
  const manaDir = tempManaDir();
  const script = `
    import { acquire, checkLock } from "${ROOT}mod.ts";
    import { plantLock } from "${ROOT}tests/_helpers.ts";
    const manaDir = ${JSON.stringify(manaDir)};
    const base = { unitId: "1", pid: 1, lockedAt: 1, host: Deno.hostname() };
    // pid 1 is alive, but did not start at tick 1: its pid was reused.
    plantLock(manaDir, { ...base, filePath: "reused.ts", startTime: 1 });
    // pid 1 is alive, but the lock was taken during another boot.
    plantLock(manaDir, { ...base, filePath: "reboot.ts", bootId: "00000000-0000-0000-0000-000000000000" });
    await acquire(manaDir, "2", Deno.pid, "mine.ts");
    const mine = JSON.parse(Deno.readTextFileSync(
      manaDir + "/locks/" + (await import("${ROOT}mod.ts")).lockFilenameSync("mine.ts")));
    console.log(JSON.stringify({
      reused: await checkLock(manaDir, "reused.ts"),
      reboot: await checkLock(manaDir, "reboot.ts"),
      recorded: typeof mine.start_time === "number" && typeof mine.boot_id === "string",
      own: (await checkLock(manaDir, "mine.ts"))?.unitId,
    }));
  `;
  const out = await new Deno.Command(DENO, {
    args: ["eval", "-A", script],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
  const result = JSON.parse(new TextDecoder().decode(out.stdout));
  assert.deepEqual(result, { reused: null, reboot: null, recorded: true, own: "2" });
});

Deno.test("without --allow-run a held lock is an error, never stale, and stays on disk", async () => {
  const manaDir = tempManaDir();
  const dead = await deadPid();
  const held = plantLock(manaDir, { unitId: "1", pid: 1, filePath: "held.ts", lockedAt: 1 });
  const stale = plantLock(manaDir, { unitId: "1", pid: dead, filePath: "stale.ts", lockedAt: 1 });
  const script = `
    import { acquire, checkLock, listLocks, LockPermissionError } from "${ROOT}mod.ts";
    const manaDir = ${JSON.stringify(manaDir)};
    const results = [];
    for (const call of [
      () => acquire(manaDir, "2", Deno.pid, "held.ts"),
      () => checkLock(manaDir, "stale.ts"),
      () => listLocks(manaDir),
    ]) {
      try { await call(); results.push("no error"); }
      catch (e) { results.push(e instanceof LockPermissionError ? e.message : String(e)); }
    }
    console.log(JSON.stringify(results));
  `;
  const out = await runScript(script, [`--allow-read=${manaDir}`, `--allow-write=${manaDir}`]);
  assert.equal(out.code, 0, out.stderr);
  const messages: string[] = JSON.parse(out.stdout);
  assert.equal(messages.length, 3);
  for (const message of messages) {
    assert.match(message, /Needs --allow-run to probe .* run with --allow-run/);
  }
  assert.ok(exists(held) && exists(stale), "nothing may be deleted without a proof");
});

Deno.test("without write access, acquire says which permission is missing and writes nothing", async () => {
  const manaDir = tempManaDir();
  Deno.mkdirSync(`${manaDir}/locks`);
  const script = `
    import { acquire } from "${ROOT}mod.ts";
    try { await acquire(${
    JSON.stringify(manaDir)
  }, "1", Deno.pid, "a.ts"); console.log("acquired"); }
    catch (e) { console.log(e.name + ": " + e.message); }
  `;
  const { stdout } = await runScript(script, [`--allow-read=${manaDir}`]);
  assert.match(stdout, /^LockPermissionError: Cannot write .*--allow-write/);
  assert.deepEqual([...Deno.readDirSync(`${manaDir}/locks`)], []);
});

Deno.test("without --allow-sys=hostname a lock that records a host is an error, not foreign", async () => {
  const manaDir = tempManaDir();
  const dead = await deadPid();
  const stale = plantLock(manaDir, {
    unitId: "1",
    pid: dead,
    filePath: "a.ts",
    lockedAt: 1,
    host: Deno.hostname(),
  });
  const script = `
    import { checkLock } from "${ROOT}mod.ts";
    try { await checkLock(${JSON.stringify(manaDir)}, "a.ts"); console.log("no error"); }
    catch (e) { console.log(e.name + ": " + e.message); }
  `;
  const { stdout } = await runScript(script, [
    `--allow-read=${manaDir}`,
    `--allow-write=${manaDir}`,
    "--allow-run",
  ]);
  assert.match(
    stdout,
    /^LockPermissionError: Needs --allow-sys=hostname .* run with --allow-sys=hostname/,
  );
  assert.ok(exists(stale), "nothing may be deleted without a proof");
});
