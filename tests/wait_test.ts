// acquireWait: prompt hand-off, timeout, abort, stale takeover, and the polling fallback.

import assert from "node:assert/strict";
import process from "node:process";
import { acquire, acquireWait, checkLock, release } from "../mod.ts";
import { openWatcherCount, setWatching } from "../src/wait.ts";
import { DENO, plantLock, tempManaDir } from "./_helpers.ts";
import { CHILD_PERMISSIONS, LineReader } from "./fixtures/child.ts";
import { now, sleep, summarize, within } from "./fixtures/measure.ts";

const pid = Deno.pid;
const FILE = "src/a.ts";
const WAITER = new URL("./fixtures/waiter.ts", import.meta.url).pathname;
const encoder = new TextEncoder();

/** Hands the lock from one task to a waiting one `rounds` times; returns the latencies. */
async function handOffs(manaDir: string, rounds: number): Promise<number[]> {
  const latencies: number[] = [];
  for (let round = 0; round < rounds; round++) {
    assert(await acquire(manaDir, "holder", pid, FILE));
    const waiting = acquireWait(manaDir, "waiter", pid, FILE).then((acquired) => {
      return { acquired, at: performance.now() };
    });
    await sleep(10); // let the waiter go to sleep
    const releasedAt = performance.now();
    assert(await release(manaDir, "holder", pid, FILE));
    const { acquired, at } = await waiting;
    assert(acquired);
    latencies.push(at - releasedAt);
    assert(await release(manaDir, "waiter", pid, FILE));
  }
  return latencies;
}

Deno.test("acquireWait: takes a free lock, or its own, at once", async () => {
  const manaDir = tempManaDir();
  assert(await acquireWait(manaDir, "1.1", pid, FILE));
  assert(await acquireWait(manaDir, "1.1", pid, FILE, { timeoutMs: 0 }));
  assert.equal((await checkLock(manaDir, FILE))?.unitId, "1.1");
});

Deno.test("acquireWait: hand-off between two tasks, woken by the watcher", async () => {
  const latencies = await handOffs(tempManaDir(), 20);
  console.log(`hand-off between two tasks (watcher): ${summarize(latencies)}`);
});

Deno.test("acquireWait: hand-off between two tasks, polling only", async () => {
  setWatching(false);
  try {
    const latencies = await handOffs(tempManaDir(), 10);
    console.log(`hand-off between two tasks (polling only): ${summarize(latencies)}`);
  } finally {
    setWatching(true);
  }
});

Deno.test("acquireWait: hand-off between two processes", async () => {
  const manaDir = tempManaDir();
  const child = new Deno.Command(DENO, {
    args: ["run", ...CHILD_PERMISSIONS, WAITER, manaDir, FILE],
    stdin: "piped",
    stdout: "piped",
  }).spawn();
  const commands = child.stdin.getWriter();
  const replies = new LineReader(child.stdout);
  const stamped: number[] = [];
  const observed: number[] = [];
  try {
    for (let round = 0; round < 20; round++) {
      assert(await acquire(manaDir, "parent", pid, FILE));
      await commands.write(encoder.encode("wait\n"));
      assert.equal(await replies.next(), "waiting");
      await sleep(15); // let the child go to sleep
      const releasedAt = now();
      assert(await release(manaDir, "parent", pid, FILE));
      const reply = await replies.next();
      observed.push(now() - releasedAt);
      assert.match(reply ?? "", /^acquired \d/);
      stamped.push(Number(reply!.slice("acquired ".length)) - releasedAt);
    }
  } finally {
    await commands.close();
    await replies.rest();
  }
  assert((await child.status).success);
  console.log(`hand-off between two processes, stamped by the child: ${summarize(stamped)}`);
  console.log(`  ... seen by the parent (includes the pipe): ${summarize(observed)}`);
});

Deno.test("acquireWait: waiters share one watcher per directory, closed when they are done", async () => {
  const manaDir = tempManaDir();
  const files = ["src/a.ts", "src/b.ts", "src/c.ts"];
  for (const file of files) assert(await acquire(manaDir, "holder", pid, file));
  const waiting = files.map((file) => acquireWait(manaDir, "waiter", pid, file));
  await sleep(10);
  assert.equal(openWatcherCount(), 1);
  for (const file of files) await release(manaDir, "holder", pid, file);
  assert.deepEqual(await Promise.all(waiting), [true, true, true]);
  assert.equal(openWatcherCount(), 0);
});

Deno.test("acquireWait: survives the lock directory being removed while it waits", async () => {
  const manaDir = tempManaDir();
  assert(await acquire(manaDir, "holder", pid, FILE));
  const waiting = acquireWait(manaDir, "waiter", pid, FILE);
  await sleep(10);
  Deno.removeSync(`${manaDir}/locks`, { recursive: true });
  assert(await within(waiting, 5_000, "the acquisition"));
  assert.equal((await checkLock(manaDir, FILE))?.unitId, "waiter");
  assert.equal(openWatcherCount(), 0);
});

Deno.test("acquireWait: one holder at a time among many waiters", async () => {
  const manaDir = tempManaDir();
  let inside = 0;
  let turns = 0;
  const worker = async (unitId: string) => {
    for (let turn = 0; turn < 5; turn++) {
      assert(await acquireWait(manaDir, unitId, pid, FILE));
      assert.equal(inside++, 0, "two waiters hold the lock at once");
      await sleep(1);
      inside--;
      turns++;
      assert(await release(manaDir, unitId, pid, FILE));
    }
  };
  await Promise.all(["w1", "w2", "w3", "w4"].map(worker));
  assert.equal(turns, 20);
  assert.equal(await checkLock(manaDir, FILE), null);
});

Deno.test("acquireWait: resolves false once timeoutMs passes", async () => {
  const manaDir = tempManaDir();
  assert(await acquire(manaDir, "holder", pid, FILE));
  assert.equal(await acquireWait(manaDir, "waiter", pid, FILE, { timeoutMs: 0 }), false);
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  assert.equal(await acquireWait(manaDir, "waiter", pid, FILE, { timeoutMs: 300 }), false);
  const waited = performance.now() - started;
  const cpu = process.cpuUsage(cpuBefore);
  console.log(
    `timed out after ${waited.toFixed(1)} ms (asked 300); CPU used meanwhile ` +
      `${((cpu.user + cpu.system) / 1000).toFixed(1)} ms`,
  );
  assert.equal((await checkLock(manaDir, FILE))?.unitId, "holder");
});

Deno.test("acquireWait: rejects with the signal's reason when aborted", async () => {
  const manaDir = tempManaDir();
  assert(await acquire(manaDir, "holder", pid, FILE));
  const reason = new Error("no longer needed");

  const controller = new AbortController();
  const waiting = acquireWait(manaDir, "waiter", pid, FILE, { signal: controller.signal });
  setTimeout(() => controller.abort(reason), 20);
  await assert.rejects(waiting, (error) => error === reason);

  const early = AbortSignal.abort(reason);
  await assert.rejects(
    acquireWait(manaDir, "w", pid, FILE, { signal: early }),
    (e) => e === reason,
  );

  const plain = new AbortController();
  const pending = acquireWait(manaDir, "waiter", pid, FILE, { signal: plain.signal });
  plain.abort();
  await assert.rejects(pending, { name: "AbortError" });

  assert.equal((await checkLock(manaDir, FILE))?.unitId, "holder");
});

Deno.test("acquireWait: takes over from a holder killed with SIGKILL", async () => {
  const manaDir = tempManaDir();
  const holder = new Deno.Command(DENO, { args: ["eval", "setTimeout(() => {}, 60_000)"] })
    .spawn();
  plantLock(manaDir, { unitId: "holder", pid: holder.pid, filePath: FILE, lockedAt: 0 });
  const waiting = acquireWait(manaDir, "waiter", pid, FILE).then(() => performance.now());
  await sleep(30);
  assert.equal((await checkLock(manaDir, FILE))?.unitId, "holder");
  holder.kill("SIGKILL");
  await holder.status;
  const reapedAt = performance.now();
  const acquiredAt = await within(waiting, 5_000, "the takeover");
  assert.equal((await checkLock(manaDir, FILE))?.unitId, "waiter");
  // No file event marks a death: the safety-net poll finds it.
  console.log(`took over ${(acquiredAt - reapedAt).toFixed(1)} ms after the holder was reaped`);
});

Deno.test("acquireWait: rejects bad arguments", async () => {
  const manaDir = tempManaDir();
  await assert.rejects(acquireWait(manaDir, "", pid, FILE), TypeError);
  await assert.rejects(acquireWait(manaDir, "1.1", 0, FILE), RangeError);
  await assert.rejects(acquireWait(manaDir, "1.1", pid, FILE, { timeoutMs: -1 }), RangeError);
  await assert.rejects(acquireWait(manaDir, "1.1", pid, FILE, { timeoutMs: NaN }), RangeError);
  await assert.rejects(acquireWait(manaDir, "1.1", pid, ""), TypeError);
});
