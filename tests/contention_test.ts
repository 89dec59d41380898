// Many processes race on one lock while holders are killed with SIGKILL; an independent marker
// file inside the critical section counts overlaps. Run with real child processes.

import assert from "node:assert/strict";
import { lockFilenameSync } from "../mod.ts";
import { ROOT, tempManaDir } from "./_helpers.ts";
import { type Totals, totalsOf } from "./fixtures/marker.ts";

const CONTENDER = `${ROOT}tests/fixtures/contender.ts`;
const FLAGS = ["--allow-read", "--allow-write", "--allow-run", "--allow-sys=hostname"];

/**
 * Races `processes` contenders on one lock until they reach `target` acquisitions (and, with
 * the lock, at least 10 kills) or `maxMs` passes. Stopping on a count, not a time, keeps the
 * test meaningful on a busy machine.
 */
async function race(
  mode: "lock" | "bypass",
  processes: number,
  target: number,
  maxMs: number,
): Promise<Totals> {
  const manaDir = tempManaDir();
  const workDir = `${manaDir}/../work`;
  Deno.mkdirSync(workDir);
  const lockPath = `${manaDir}/locks/${lockFilenameSync("shared.ts")}`;
  const deadline = Date.now() + maxMs;
  const spawn = (as: string = mode) =>
    new Deno.Command(Deno.execPath(), {
      args: ["run", ...FLAGS, CONTENDER, manaDir, workDir, as, String(maxMs)],
      stdout: "null",
      stderr: "inherit",
    }).spawn();
  const children = new Set(Array.from({ length: processes }, () => spawn()));
  const exits: Promise<Deno.CommandStatus>[] = [...children].map((c) => c.status);
  // A clean-up process races the holders: checks, lists and prunes must never free a live lock.
  if (mode === "lock") exits.push(spawn("clean").status);
  let kills = 0;
  while (Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 150));
    const { acquired } = totalsOf(workDir, kills);
    if (acquired >= target && (mode === "bypass" || kills >= 10)) break;
    if (mode === "bypass") continue;
    // Kill whoever holds the lock right now, and start a replacement.
    let holder: number;
    try {
      holder = JSON.parse(Deno.readTextFileSync(lockPath)).pid;
    } catch {
      continue; // free at this instant
    }
    const child = [...children].find((c) => c.pid === holder);
    if (!child) continue;
    child.kill("SIGKILL");
    await child.status;
    children.delete(child);
    kills++;
    const replacement = spawn();
    children.add(replacement);
    exits.push(replacement.status);
  }
  Deno.writeTextFileSync(`${workDir}/stop`, "");
  await Promise.all(exits);
  return totalsOf(workDir, kills);
}

Deno.test("contention: 4 processes and a cleaner, holders killed with SIGKILL, never two holders", async () => {
  const totals = await race("lock", 4, 6_000, 60_000);
  console.log(
    `acquisitions ${totals.acquired}, overlaps ${totals.overlaps}, ` +
      `holders killed ${totals.kills}, stale takeovers after a kill inside ${totals.takeovers}`,
  );
  assert.equal(totals.overlaps, 0);
  assert.ok(totals.acquired >= 5000, `only ${totals.acquired} acquisitions`);
  assert.ok(totals.kills >= 10, `only ${totals.kills} kills`);
  assert.ok(totals.takeovers >= 1, "no holder was killed inside its critical section");
});

Deno.test("contention: the overlap check detects overlaps when the lock is bypassed", async () => {
  const totals = await race("bypass", 3, 2_000, 10_000);
  console.log(`bypassed: acquisitions ${totals.acquired}, overlaps ${totals.overlaps}`);
  assert.ok(totals.overlaps > 0, "the marker check must be able to fail");
});
