// The CLI, run as a real subprocess: output, JSON shapes and exit codes of every command and of
// bad input. The in-process tests at the end cover the pure formatting helpers.

import assert from "node:assert/strict";
import { formatAge, lockTable, makeStyle } from "../src/cli_format.ts";
import { deadPid, DENO, exists, lockPathOf, plantLock, ROOT, tempManaDir } from "./_helpers.ts";

const CLI = `${ROOT}src/cli.ts`;
const FLAGS = ["--allow-read", "--allow-write", "--allow-run", "--allow-sys=hostname"];
const VERSION = JSON.parse(Deno.readTextFileSync(`${ROOT}deno.json`)).version;
const ME = Deno.pid; // a live process other than the CLI's own: the test runner
const ON_DISK_KEYS = [
  "unit_id",
  "pid",
  "file_path",
  "locked_at",
  "host",
  "boot_id",
  "start_time",
  "token",
];

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

interface RunOptions {
  /** Working directory; by default the directory that holds the test's `.mana`. */
  cwd?: string;
  /** Deno permission flags; by default the documented ones. */
  flags?: string[];
  env?: Record<string, string>;
}

async function cli(args: string[], options: RunOptions = {}): Promise<Run> {
  const output = await new Deno.Command(DENO, {
    args: ["run", ...(options.flags ?? FLAGS), CLI, ...args],
    cwd: options.cwd ?? Deno.cwd(),
    env: { NO_COLOR: "1", ...options.env },
    stdin: "null",
  }).output();
  const decoder = new TextDecoder();
  return {
    code: output.code,
    stdout: decoder.decode(output.stdout),
    stderr: decoder.decode(output.stderr),
  };
}

/** Runs the CLI against `manaDir` (passed with `--dir`). */
function inDir(manaDir: string, args: string[], options: RunOptions = {}): Promise<Run> {
  return cli([...args, "--dir", manaDir], { cwd: parentOf(manaDir), ...options });
}

function parentOf(path: string): string {
  return path.replace(/\/[^/]+\/?$/, "") || "/";
}

function emptyTempDir(): string {
  // A sibling of a fresh .mana, so that the helpers remove it when the tests end.
  const root = parentOf(tempManaDir());
  Deno.removeSync(`${root}/.mana`);
  return root;
}

/** Asserts a failure: the exit code, nothing on stdout, one line on stderr matching `pattern`. */
function assertFails(run: Run, code: number, pattern: RegExp, label = ""): void {
  assert.equal(run.code, code, `${label}: exit ${run.code}, stderr ${run.stderr}`);
  assert.equal(run.stdout, "", `${label}: stdout must be empty`);
  const lines = run.stderr.trimEnd().split("\n");
  assert.equal(lines.length, 1, `${label}: one line on stderr, got ${run.stderr}`);
  assert.match(lines[0], /^agentlock: /, label);
  assert.match(lines[0], pattern, label);
}

function assertOk(run: Run, code = 0): string {
  assert.equal(run.code, code, `exit ${run.code}; stdout ${run.stdout}; stderr ${run.stderr}`);
  assert.equal(run.stderr, "");
  assert(!run.stdout.includes("\x1b["), "no colour when stdout is not a terminal");
  return run.stdout.trimEnd();
}

function assertLockJson(value: Record<string, unknown>): void {
  const keys = Object.keys(value);
  assert.deepEqual(keys.slice(0, 4), ON_DISK_KEYS.slice(0, 4));
  assert.equal(keys.at(-1), "lock_path");
  const onDisk = JSON.parse(Deno.readTextFileSync(value.lock_path as string));
  assert.deepEqual(Object.keys(onDisk), keys.slice(0, -1), "same keys as the lock file, in order");
  for (const key of keys.slice(0, -1)) assert(ON_DISK_KEYS.includes(key), key);
  assert.deepEqual({ ...onDisk, lock_path: value.lock_path }, value);
}

/** Runs `tasks` with at most `limit` at a time, keeping the order of results. */
async function pool<T>(tasks: (() => Promise<T>)[], limit = 4): Promise<T[]> {
  const results: T[] = [];
  let next = 0;
  await Promise.all(Array.from({ length: limit }, async () => {
    while (next < tasks.length) {
      const index = next++;
      results[index] = await tasks[index]();
    }
  }));
  return results;
}

function rows(table: string): string[][] {
  return table.split("\n").map((line) => line.trim().split(/\s{2,}/));
}

// ---------------------------------------------------------------------------------------------

Deno.test("cli: --version, --help and help for every command", async () => {
  const commands = ["list", "check", "acquire", "release", "prune", "clear"];
  const [version, versionJson, help, noArgsHelp, ...perCommand] = await pool([
    () => cli(["--version"], { flags: [] }),
    () => cli(["--version", "--json"], { flags: [] }),
    () => cli(["--help"], { flags: [] }),
    () => cli(["help"], { flags: [] }),
    ...commands.map((command) => () => cli([command, "--help"], { flags: [] })),
    ...commands.map((command) => () => cli(["help", command], { flags: [] })),
  ]);
  assert.equal(assertOk(version), `agentlock ${VERSION}`);
  assert.deepEqual(JSON.parse(assertOk(versionJson)), { version: VERSION });
  for (const run of [help, noArgsHelp]) {
    const text = assertOk(run);
    assert.match(text, /^Usage: agentlock <command>/m);
    for (const command of commands) assert.match(text, new RegExp(`^  ${command}\\b`, "m"));
    assert.match(text, /Exit status: 0 .* 1 .* 2 usage error; 3 permission or I\/O error/);
  }
  perCommand.forEach((run, i) => {
    const command = commands[i % commands.length];
    const text = assertOk(run);
    assert.match(text, new RegExp(`^Usage: agentlock ${command}`));
    assert.match(text, /^Permissions: --allow-read --allow-write=<mana_dir> --allow-run/m);
    assert.match(text, /^Exit status: /m);
  });
});

Deno.test("cli: list of an empty directory says so and creates nothing", async () => {
  const manaDir = tempManaDir();
  const [text, json] = await Promise.all([
    inDir(manaDir, ["list"]),
    inDir(manaDir, ["list", "--json"]),
  ]);
  assert.equal(assertOk(text), `No locks held in ${manaDir}.`);
  assert.deepEqual(JSON.parse(assertOk(json)), []);
  assert(!exists(`${manaDir}/locks`), "looking must not create the lock directory");
});

Deno.test("cli: acquire, check, list and release, as text and JSON", async () => {
  const manaDir = tempManaDir();
  const pid = String(ME);

  assert.equal(
    assertOk(await inDir(manaDir, ["acquire", "src/a.ts", "--unit", "1.1", "--pid", pid])),
    `acquired src/a.ts for unit 1.1 (pid ${pid})`,
  );
  const taken = JSON.parse(
    assertOk(
      await inDir(manaDir, ["acquire", "src/b.ts", "--unit", "1.2", "--pid", pid, "--json"]),
    ),
  );
  assert.deepEqual(Object.keys(taken), ["file_path", "acquired", "lock"]);
  assert.equal(taken.file_path, "src/b.ts");
  assert.equal(taken.acquired, true);
  assertLockJson(taken.lock);
  assert.equal(taken.lock.lock_path, lockPathOf(manaDir, "src/b.ts"));
  assert.equal(taken.lock.unit_id, "1.2");
  assert.equal(taken.lock.pid, ME);
  // Taking a lock the same unit and pid hold succeeds again.
  assertOk(await inDir(manaDir, ["acquire", "src/a.ts", "--unit", "1.1", "--pid", pid]));

  // Held by another owner: exit 1 and the holder, a normal answer on stdout.
  const [held, heldJson, checkHeld, checkHeldJson, checkFree, checkFreeJson, dashed] = await pool([
    () => inDir(manaDir, ["acquire", "src/a.ts", "--unit", "1.3", "--pid", pid]),
    () => inDir(manaDir, ["acquire", "src/a.ts", "--unit", "1.3", "--pid", pid, "--json"]),
    () => inDir(manaDir, ["check", "src/a.ts"]),
    () => inDir(manaDir, ["check", "src/a.ts", "--json"]),
    () => inDir(manaDir, ["check", "src/c.ts"]),
    () => inDir(manaDir, ["check", "--json", "src/c.ts"]),
    () => cli(["check", "--dir", manaDir, "--", "-odd-name"]),
  ]);
  assert.match(
    assertOk(held, 1),
    new RegExp(`^held by unit 1\\.1 \\(pid ${pid}, host .+, locked .+\\)$`),
  );
  const refused = JSON.parse(assertOk(heldJson, 1));
  assert.deepEqual(Object.keys(refused), ["file_path", "acquired", "holder"]);
  assert.equal(refused.acquired, false);
  assertLockJson(refused.holder);
  assert.equal(refused.holder.unit_id, "1.1");
  assert.match(assertOk(checkHeld, 1), new RegExp(`^locked by unit 1\\.1 \\(pid ${pid}, `));
  const locked = JSON.parse(assertOk(checkHeldJson, 1));
  assert.deepEqual(Object.keys(locked), ["file_path", "locked", "holder"]);
  assert.equal(locked.locked, true);
  assertLockJson(locked.holder);
  assert.equal(assertOk(checkFree), "free");
  assert.deepEqual(JSON.parse(assertOk(checkFreeJson)), { file_path: "src/c.ts", locked: false });
  assert.equal(assertOk(dashed), "free");

  // An older lock written the way mana's Rust code writes it (no host): listed last, host "-".
  const now = Math.floor(Date.now() / 1000);
  plantLock(manaDir, { unitId: "0.9", pid: ME, filePath: "src/old.ts", lockedAt: now - 180 });
  const [list, listJson] = await Promise.all([
    inDir(manaDir, ["list"]),
    inDir(manaDir, ["list", "--json"]),
  ]);
  const table = rows(assertOk(list));
  assert.deepEqual(table[0], ["UNIT", "PID", "HOST", "AGE", "FILE"]);
  assert.equal(table.length, 4);
  assert.deepEqual(table.slice(1).map((row) => row[4]).slice(-1), ["src/old.ts"]);
  assert.deepEqual(table[3], ["0.9", pid, "-", "3m ago", "src/old.ts"]);
  assert.deepEqual(new Set(table.slice(1, 3).map((row) => row[0])), new Set(["1.1", "1.2"]));
  const listed = JSON.parse(assertOk(listJson));
  assert(Array.isArray(listed));
  assert.equal(listed.length, 3);
  listed.forEach(assertLockJson);
  assert.deepEqual(
    listed.map((lock: { file_path: string }) => lock.file_path).at(-1),
    "src/old.ts",
  );
  assert(!("host" in listed.at(-1)), "no host key where the lock file has none");
  assert(listed[0].locked_at >= listed[1].locked_at && listed[1].locked_at > listed[2].locked_at);

  // Release: one file, someone else's file, a free file, then all of a unit.
  const [released, notMine, notMineJson, notLocked] = await pool([
    () => inDir(manaDir, ["release", "src/a.ts", "--unit", "1.1"]),
    () => inDir(manaDir, ["release", "src/b.ts", "--unit", "9.9"]),
    () => inDir(manaDir, ["release", "src/b.ts", "--unit", "1.2", "--pid", "1", "--json"]),
    () => inDir(manaDir, ["release", "src/none.ts", "--unit", "1.1", "--pid", pid]),
  ]);
  assert.equal(assertOk(released), "released 1 lock (src/a.ts)");
  assert.match(assertOk(notMine, 1), /^released 0 locks: src\/b\.ts is held by unit 1\.2 \(pid/);
  const kept = JSON.parse(assertOk(notMineJson, 1));
  assert.deepEqual(Object.keys(kept), ["file_path", "released", "holder"]);
  assert.equal(kept.released, 0);
  assertLockJson(kept.holder);
  assert.equal(assertOk(notLocked), "released 0 locks: src/none.ts is not locked");
  assert.equal(assertOk(await inDir(manaDir, ["check", "src/a.ts"])), "free");
  assert.deepEqual(
    JSON.parse(assertOk(await inDir(manaDir, ["release", "--unit", "1.2", "--json"]))),
    { released: 1 },
  );
  assert.equal(
    assertOk(await inDir(manaDir, ["release", "--unit", "1.2"])),
    "released 0 locks of unit 1.2",
  );
  assert.equal(rows(assertOk(await inDir(manaDir, ["list"]))).length, 2); // header + src/old.ts
});

Deno.test("cli: release --unit --pid releases only that process's locks", async () => {
  const manaDir = tempManaDir();
  // pid 1 is always alive: a second live holder besides the test runner.
  await pool([
    () => inDir(manaDir, ["acquire", "x.ts", "--unit", "5", "--pid", String(ME)]),
    () => inDir(manaDir, ["acquire", "y.ts", "--unit", "5", "--pid", "1"]),
    () => inDir(manaDir, ["acquire", "z.ts", "--unit", "5", "--pid", "1"]),
  ]);
  assert.equal(
    assertOk(await inDir(manaDir, ["release", "--unit", "5", "--pid", "1"])),
    "released 2 locks of unit 5 (pid 1)",
  );
  const left = JSON.parse(assertOk(await inDir(manaDir, ["list", "--json"])));
  assert.deepEqual(left.map((lock: { file_path: string }) => lock.file_path), ["x.ts"]);
});

Deno.test("cli: a lock held on another host is listed with its host", async () => {
  const manaDir = tempManaDir();
  plantLock(manaDir, {
    unitId: "7.1",
    pid: 999_999_999,
    filePath: "remote.ts",
    lockedAt: Math.floor(Date.now() / 1000) - 7200,
    host: "other-host.example",
  });
  const [list, check] = await Promise.all([
    inDir(manaDir, ["list"]),
    inDir(manaDir, ["check", "remote.ts"]),
  ]);
  assert.deepEqual(rows(assertOk(list))[1], [
    "7.1",
    "999999999",
    "other-host.example",
    "2h ago",
    "remote.ts",
  ]);
  assert.equal(
    assertOk(check, 1),
    "locked by unit 7.1 (pid 999999999, host other-host.example, locked 2h ago)",
  );
});

Deno.test("cli: check reports a lock file that is being written as locked", async () => {
  const manaDir = tempManaDir();
  Deno.writeTextFileSync(lockPathOf(manaDir, "young.ts"), '{"unit_id": "1.1", "pid"');
  const [text, json] = await Promise.all([
    inDir(manaDir, ["check", "young.ts"]),
    inDir(manaDir, ["check", "young.ts", "--json"]),
  ]);
  assert.match(assertOk(text, 1), /^locked: the lock file is being written/);
  assert.deepEqual(JSON.parse(assertOk(json, 1)), {
    file_path: "young.ts",
    locked: true,
    holder: null,
  });
});

Deno.test("cli: prune removes stale and corrupt locks and says why", async () => {
  const manaDir = tempManaDir();
  const gone = await deadPid();
  const now = Math.floor(Date.now() / 1000);
  const stale = plantLock(manaDir, {
    unitId: "5.1",
    pid: gone,
    filePath: "stale.ts",
    lockedAt: now,
  });
  const live = plantLock(manaDir, { unitId: "5.2", pid: ME, filePath: "live.ts", lockedAt: now });
  const corrupt = lockPathOf(manaDir, "corrupt.ts");
  Deno.writeTextFileSync(corrupt, "{ not json");
  const old = new Date(Date.now() - 60_000);
  Deno.utimeSync(corrupt, old, old); // past the grace for locks being written
  const blocked = lockPathOf(manaDir, "blocked.ts");
  Deno.mkdirSync(blocked);

  const lines = assertOk(await inDir(manaDir, ["prune"])).split("\n");
  assert.deepEqual(lines.sort(), [
    `Pruned 2 entries; kept 1 live lock.`,
    `removed ${corrupt}: corrupt: not valid UTF-8 JSON`,
    `removed stale.ts: stale: pid ${gone} (unit 5.1) is gone`,
    `skipped ${blocked}: a directory where a lock file belongs; remove it by hand`,
  ]);
  assert(!exists(stale) && !exists(corrupt) && exists(live) && exists(blocked));

  const again = JSON.parse(assertOk(await inDir(manaDir, ["prune", "--json"])));
  assert.deepEqual(Object.keys(again), ["removed", "skipped", "live"]);
  assert.deepEqual(again.removed, []);
  assert.deepEqual(again.skipped, [{
    lock_path: blocked,
    reason: "a directory where a lock file belongs; remove it by hand",
  }]);
  assert.equal(again.live.length, 1);
  assertLockJson(again.live[0]);
  assert.equal(again.live[0].file_path, "live.ts");
  Deno.removeSync(blocked);

  plantLock(manaDir, { unitId: "5.3", pid: gone, filePath: "stale2.ts", lockedAt: now });
  const report = JSON.parse(assertOk(await inDir(manaDir, ["prune", "--json"])));
  assert.deepEqual(report.removed, [{
    lock_path: lockPathOf(manaDir, "stale2.ts"),
    reason: `stale: pid ${gone} (unit 5.3) is gone`,
    file_path: "stale2.ts",
  }]);
  assert.equal(
    assertOk(await inDir(manaDir, ["prune"])),
    "Nothing to prune; kept 1 live lock.",
  );
});

Deno.test("cli: clear refuses without --force, then removes every lock", async () => {
  const manaDir = tempManaDir();
  await pool([
    () => inDir(manaDir, ["acquire", "a.ts", "--unit", "1", "--pid", String(ME)]),
    () => inDir(manaDir, ["acquire", "b.ts", "--unit", "2", "--pid", "1"]),
  ]);
  const refused = await inDir(manaDir, ["clear"]);
  assertFails(refused, 2, /--force/, "clear");
  assert(exists(lockPathOf(manaDir, "a.ts")) && exists(lockPathOf(manaDir, "b.ts")));
  assert.equal(
    assertOk(await inDir(manaDir, ["clear", "--force"])),
    `Cleared 2 locks in ${manaDir}.`,
  );
  assert.equal(assertOk(await inDir(manaDir, ["list"])), `No locks held in ${manaDir}.`);
  assert.deepEqual(JSON.parse(assertOk(await inDir(manaDir, ["clear", "--force", "--json"]))), {
    cleared: 0,
  });
});

Deno.test("cli: without --dir, the nearest .mana walking up, else ./.mana", async () => {
  const manaDir = tempManaDir();
  const root = parentOf(manaDir);
  Deno.mkdirSync(`${root}/a/b`, { recursive: true });
  assertOk(await cli(["acquire", "f.ts", "--unit", "1", "--pid", String(ME)], { cwd: root }));
  const found = JSON.parse(assertOk(await cli(["list", "--json"], { cwd: `${root}/a/b` })));
  assert.deepEqual(found.map((lock: { lock_path: string }) => lock.lock_path), [
    lockPathOf(manaDir, "f.ts"),
  ]);
  assert.equal(found[0].lock_path.startsWith(root), true);

  // No .mana anywhere above a fresh directory: ./.mana, created only by acquire.
  const fresh = emptyTempDir();
  let above = parentOf(fresh);
  for (; above !== "/"; above = parentOf(above)) if (exists(`${above}/.mana`)) return;
  if (exists("/.mana")) return;
  assert.equal(assertOk(await cli(["list"], { cwd: fresh })), "No locks held in .mana.");
  assert(!exists(`${fresh}/.mana`));
  assertOk(await cli(["acquire", "g.ts", "--unit", "1", "--pid", String(ME)], { cwd: fresh }));
  assert(exists(`${fresh}/.mana/locks/${lockPathOf(`${fresh}/.mana`, "g.ts").split("/").pop()}`));
});

Deno.test("cli: bad input exits 2 with one line on stderr and writes nothing", async () => {
  const cwd = emptyTempDir();
  const file = `${cwd}/not-a-dir`;
  Deno.writeTextFileSync(file, "keep me");
  const gone = await deadPid();
  const cases: [string[], RegExp][] = [
    [[], /missing command; use one of list, check/],
    [["bogus"], /unknown command "bogus"/],
    [["bogus", "--json"], /unknown command "bogus"/],
    [["list", "--bogus"], /unknown option --bogus/],
    [["list", "-x"], /unknown option -x/],
    [["list", "--json=yes"], /--json takes no value/],
    [["list", "--unit", "1"], /list does not take --unit/],
    [["list", "extra"], /list takes no arguments/],
    [["check"], /check needs a <file> argument/],
    [["check", "--json"], /check needs a <file> argument/],
    [["check", "a", "b"], /check takes one <file>/],
    [["check", ""], /<file> is empty/],
    [["acquire", "a", "--pid", "1"], /acquire needs --unit/],
    [["acquire", "a", "--unit", "1"], /acquire needs --pid <pid>.*--pid \$\$/],
    [["acquire", "a", "--unit"], /--unit needs a value/],
    [["acquire", "a", "--unit", "", "--pid", "1"], /--unit is empty/],
    [["acquire", "a", "--unit", "1", "--pid", "abc"], /--pid "abc" is not a process id/],
    [["acquire", "a", "--unit", "1", "--pid", "0"], /--pid "0" is not a process id/],
    [["acquire", "a", "--unit", "1", "--pid", "-5"], /--pid needs a value/],
    [["acquire", "a", "--unit", "1", "--unit", "2", "--pid", "1"], /--unit is given twice/],
    [["acquire", "a", "--unit", "1", "--pid", String(gone)], /pid \d+ is not running/],
    [["release", "a"], /release needs --unit/],
    [["release", "a", "--force", "--unit", "1"], /release does not take --force/],
    [["clear"], /run it with --force/],
    [["clear", "--json"], /run it with --force/],
    [["list", "--dir", file], /--dir .*not-a-dir is not a directory/],
    [["acquire", "a", "--unit", "1", "--pid", "1", "--dir", file], /is not a directory/],
    [["list", "--dir"], /--dir needs a value/],
    [["list", "--dir", ""], /--dir is empty/],
  ];
  const runs = await pool(cases.map(([args]) => () => cli(args, { cwd })));
  runs.forEach((run, i) => assertFails(run, 2, cases[i][1], cases[i][0].join(" ")));
  assert.deepEqual([...Deno.readDirSync(cwd)].map((entry) => entry.name), ["not-a-dir"]);
  assert.equal(Deno.readTextFileSync(file), "keep me");
});

Deno.test("cli: a missing permission exits 3 with one line naming the flag", async () => {
  const manaDir = tempManaDir();
  const cwd = parentOf(manaDir);
  const without = (flag: string) => FLAGS.filter((f) => !f.startsWith(flag));
  const [noRun, noWrite, noSys, none, scoped] = await pool([
    () => inDir(manaDir, ["list"], { flags: without("--allow-run") }),
    () => inDir(manaDir, ["check", "a.ts"], { flags: without("--allow-write") }),
    () => inDir(manaDir, ["prune"], { flags: without("--allow-sys") }),
    () => cli(["acquire", "a.ts", "--unit", "1", "--pid", String(ME)], { cwd, flags: [] }),
    () =>
      inDir(manaDir, ["clear", "--force"], {
        flags: [...without("--allow-write"), `--allow-write=${cwd}/elsewhere`],
      }),
  ]);
  assertFails(noRun, 3, /Needs --allow-run to probe .*; run with --allow-run$/, "no run");
  assertFails(noWrite, 3, new RegExp(`run with --allow-write=${manaDir}$`), "no write");
  assertFails(noSys, 3, /run with --allow-sys=hostname$/, "no sys");
  assertFails(
    none,
    3,
    /run with --allow-read=\.mana --allow-write=\.mana --allow-run --allow-sys=hostname$/,
    "none",
  );
  assertFails(scoped, 3, /--allow-write=/, "scoped");
  assert.deepEqual([...Deno.readDirSync(manaDir)], [], "nothing written");
});

Deno.test("cli: deno task locks and deno task cleanup run the CLI", async () => {
  const task = async (args: string[]) => {
    const output = await new Deno.Command(DENO, {
      args: ["task", "-q", ...args],
      cwd: ROOT,
      env: { NO_COLOR: "1" },
    }).output();
    return { code: output.code, stdout: new TextDecoder().decode(output.stdout) };
  };
  const [version, cleanupHelp] = await Promise.all([
    task(["locks", "--version"]),
    task(["cleanup", "--help"]),
  ]);
  assert.equal(version.code, 0);
  assert.equal(version.stdout.trim(), `agentlock ${VERSION}`);
  assert.equal(cleanupHelp.code, 0);
  assert.match(cleanupHelp.stdout, /^Usage: agentlock prune/);
});

Deno.test({
  name: "cli: colour on a terminal only, and never with NO_COLOR or --json",
  ignore: Deno.build.os !== "linux" || !exists("/usr/bin/script"),
  async fn() {
    const manaDir = tempManaDir();
    plantLock(manaDir, { unitId: "1", pid: ME, filePath: "a.ts", lockedAt: 0 });
    // script(1) runs the CLI on a pseudo-terminal; env(1) sets or unsets NO_COLOR for it.
    const inTerminal = async (args: string[], noColor: boolean) => {
      const env = noColor ? ["env", "NO_COLOR=1"] : ["env", "-u", "NO_COLOR"];
      const command = [...env, DENO, "run", ...FLAGS, CLI, ...args, "--dir", manaDir]
        .map((arg) => `'${arg}'`).join(" ");
      const output = await new Deno.Command("/usr/bin/script", {
        args: ["-qec", command, "/dev/null"],
      }).output();
      return new TextDecoder().decode(output.stdout);
    };
    const [colored, noColor, json] = await Promise.all([
      inTerminal(["list"], false),
      inTerminal(["list"], true),
      inTerminal(["list", "--json"], false),
    ]);
    assert(colored.includes("\x1b[1mUNIT"), colored);
    assert.match(noColor, /UNIT/);
    assert(!noColor.includes("\x1b["));
    assert(!json.includes("\x1b["));
  },
});

Deno.test("cli: ages and the table, in-process", () => {
  assert.equal(formatAge(100, 100), "just now");
  assert.equal(formatAge(100, 90), "just now"); // a clock ahead of ours
  assert.equal(formatAge(0, 59), "59s ago");
  assert.equal(formatAge(0, 180), "3m ago");
  assert.equal(formatAge(0, 7200), "2h ago");
  assert.equal(formatAge(0, 3 * 86400), "3d ago");
  const record = { unitId: "1.1", pid: 42, filePath: "a.ts", lockedAt: 0, host: "h" };
  assert.equal(
    lockTable([record], 60, makeStyle(false)),
    "UNIT  PID  HOST  AGE     FILE\n1.1   42   h     1m ago  a.ts",
  );
  assert(lockTable([record], 60, makeStyle(true)).includes("\x1b[1mUNIT"));
});
