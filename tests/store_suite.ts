// The behaviour every LockStore shares, registered once per store: file_store_test.ts and
// redis_test.ts call storeSuite with their own factory.

import assert from "node:assert/strict";
import { LockTimeoutError } from "../mod.ts";
import type { LockStore, StoreCompromisedEvent, StoreLock } from "../src/lock_store.ts";
import { sleep, within } from "./fixtures/measure.ts";

/** Two store objects over one fresh, empty backend (one lock directory, one key prefix). */
export interface StorePair {
  store: LockStore;
  /** A second object over the same backend, as another agent process would open it. */
  other: LockStore;
}

/** How a suite makes its stores, and whether it can run here. */
export interface SuiteOptions {
  /** Skips every test (e.g. no Redis server); the reason is printed once by the caller. */
  ignore?: boolean;
}

const pid = Deno.pid;
const FILE = "src/a.ts";

/** Registers the shared behavioural tests for one kind of store. */
export function storeSuite(
  name: string,
  makePair: () => Promise<StorePair>,
  options: SuiteOptions = {},
): void {
  const test = (title: string, fn: (pair: StorePair) => Promise<void>) =>
    Deno.test({
      name: `${name}: ${title}`,
      ignore: options.ignore ?? false,
      async fn() {
        const pair = await makePair();
        try {
          await fn(pair);
        } finally {
          await pair.store.close();
          await pair.other.close();
        }
      },
    });

  test("acquire, check, release", async ({ store }) => {
    assert.equal(await store.check(FILE), null);
    assert(await store.acquire("1.1", pid, FILE));
    const holder = await store.check(FILE);
    assert.equal(holder?.unitId, "1.1");
    assert.equal(holder?.pid, pid);
    assert.equal(holder?.filePath, FILE);
    assert(Math.abs(holder!.lockedAt - Date.now() / 1000) < 60);
    assert(await store.release("1.1", pid, FILE));
    assert.equal(await store.check(FILE), null);
    assert.equal(await store.release("1.1", pid, FILE), false);
  });

  test("the same owner re-acquires; other owners are blocked and cannot release", async ({ store, other }) => {
    assert(await store.acquire("7.1", pid, FILE));
    assert(await store.acquire("7.1", pid, FILE));
    assert(!(await store.acquire("7.2", pid, FILE)));
    assert(!(await store.acquire("7.1", pid + 1, FILE)));
    assert(!(await other.acquire("7.2", pid, FILE)));
    assert.equal(await store.release("7.2", pid, FILE), false);
    assert.equal(await other.release("7.1", pid + 1, FILE), false);
    assert.equal((await other.check(FILE))?.unitId, "7.1");
    // The owner can release through any store object of the same backend.
    assert(await other.release("7.1", pid, FILE));
    assert(await other.acquire("7.2", pid, FILE));
  });

  test("list shows every lock, where it lives", async ({ store, other }) => {
    assert.deepEqual(await store.list(), []);
    await store.acquire("3.1", pid, "/tmp/x.rs");
    await other.acquire("3.2", pid, "/tmp/y.rs");
    const locks = await store.list();
    assert.deepEqual(locks.map((lock) => lock.info.unitId).sort(), ["3.1", "3.2"]);
    assert.deepEqual(locks.map((lock) => lock.info.filePath).sort(), ["/tmp/x.rs", "/tmp/y.rs"]);
    assert.equal(new Set(locks.map((lock) => lock.location)).size, 2);
  });

  test("releaseAllForUnit releases that unit's locks only", async ({ store, other }) => {
    await store.acquire("2.1", pid, "/tmp/a.rs");
    // Another live process of the same unit (a dead pid would make a file lock stale).
    await other.acquire("2.1", Deno.ppid, "/tmp/b.rs");
    await store.acquire("2.2", pid, "/tmp/c.rs");
    assert.equal(await store.releaseAllForUnit("2.1"), 2);
    assert.equal(await store.check("/tmp/a.rs"), null);
    assert.equal(await store.check("/tmp/b.rs"), null);
    assert.equal((await store.check("/tmp/c.rs"))?.unitId, "2.2");
    assert.equal(await store.releaseAllForUnit("2.1"), 0);
  });

  test("clearAll removes everything", async ({ store, other }) => {
    await store.acquire("4.1", pid, "/tmp/p.rs");
    await other.acquire("4.2", pid, "/tmp/q.rs");
    assert.equal(await store.clearAll(), 2);
    assert.deepEqual(await store.list(), []);
    assert.equal(await store.clearAll(), 0);
  });

  test("acquireWait: at once when free, false on timeout, takes over on release", async ({ store, other }) => {
    assert(await store.acquireWait("1.1", pid, FILE));
    assert(await store.acquireWait("1.1", pid, FILE, { timeoutMs: 0 }));
    assert.equal(await other.acquireWait("2.1", pid, FILE, { timeoutMs: 0 }), false);
    const started = performance.now();
    assert.equal(await other.acquireWait("2.1", pid, FILE, { timeoutMs: 100 }), false);
    assert(performance.now() - started >= 90);
    assert.equal((await store.check(FILE))?.unitId, "1.1");

    const waiting = other.acquireWait("2.1", pid, FILE, { timeoutMs: 10_000 });
    await sleep(30);
    const releasedAt = performance.now();
    assert(await store.release("1.1", pid, FILE));
    assert(await within(waiting, 5_000, "the hand-off"));
    console.log(`${name}: hand-off in ${(performance.now() - releasedAt).toFixed(1)} ms`);
    assert.equal((await store.check(FILE))?.unitId, "2.1");
  });

  test("acquireWait: an abort rejects with the signal's reason", async ({ store, other }) => {
    assert(await store.acquire("holder", pid, FILE));
    const controller = new AbortController();
    const reason = new Error("cancelled");
    const waiting = other.acquireWait("waiter", pid, FILE, { signal: controller.signal });
    setTimeout(() => controller.abort(reason), 30);
    await assert.rejects(within(waiting, 5_000, "the abort"), (error) => error === reason);
    await assert.rejects(
      other.acquireWait("waiter", pid, FILE, { signal: AbortSignal.abort(reason) }),
      (error) => error === reason,
    );
    assert.equal((await store.check(FILE))?.unitId, "holder");
  });

  test("lock: a handle holds until released, and verify follows the lock", async ({ store }) => {
    const held = await store.lock(FILE, { unitId: "1.1" });
    assert.equal(held.info.unitId, "1.1");
    assert.equal(held.info.pid, pid);
    assert.equal(held.info.filePath, FILE);
    assert.equal(held.released, false);
    assert(await held.verify());
    assert.equal((await store.check(FILE))?.unitId, "1.1");
    assert.equal(await held.release(), true);
    assert.equal(held.released, true);
    assert.equal(await held.verify(), false);
    assert.equal(await store.check(FILE), null);
  });

  test("lock: await using releases at the end of the block, also on a throw", async ({ store }) => {
    {
      await using held = await store.lock(FILE, { unitId: "1.1" });
      assert(await held.verify());
    }
    assert.equal(await store.check(FILE), null);
    const edit = async () => {
      await using _held = await store.lock(FILE, { unitId: "1.1" });
      throw new Error("the edit failed");
    };
    await assert.rejects(edit(), /the edit failed/);
    assert.equal(await store.check(FILE), null);
  });

  test("lock: releasing twice is harmless, and never frees a later lock", async ({ store }) => {
    const held = await store.lock(FILE, { unitId: "1.1" });
    const [first, second] = await Promise.all([held.release(), held.release()]);
    assert.deepEqual([first, second], [true, false]);
    await held[Symbol.asyncDispose]();
    const next = await store.lock(FILE, { unitId: "1.1" });
    assert.equal(await held.release(), false);
    assert(await next.verify());
    assert(await next.release());
  });

  test("lock: handles of one owner share the lock until the last is released", async ({ store }) => {
    const first = await store.lock(FILE, { unitId: "1.1" });
    const second = await store.lock(FILE, { unitId: "1.1", timeoutMs: 0 });
    assert.equal(await second.release(), true);
    assert(await first.verify());
    assert.equal((await store.check(FILE))?.unitId, "1.1");
    assert.equal(await first.release(), true);
    assert.equal(await store.check(FILE), null);

    // A lock taken with acquire() is adopted: releasing the handle releases it.
    assert(await store.acquire("1.1", pid, FILE));
    const adopted = await store.lock(FILE, { unitId: "1.1" });
    assert.equal(await adopted.release(), true);
    assert.equal(await store.check(FILE), null);
  });

  test("lock: timeoutMs throws LockTimeoutError naming the holder", async ({ store, other }) => {
    assert(await store.acquire("holder", pid, FILE));
    for (const timeoutMs of [0, 50]) {
      await assert.rejects(other.lock(FILE, { unitId: "waiter", timeoutMs }), (error) => {
        assert(error instanceof LockTimeoutError);
        assert.equal(error.filePath, FILE);
        assert.equal(error.holder?.unitId, "holder");
        return true;
      });
    }
  });

  test("lock: a lock forced away is reported, and never removed by the old handle", async ({ store, other }) => {
    let report!: (event: StoreCompromisedEvent) => void;
    const compromised = new Promise<StoreCompromisedEvent>((resolve) => report = resolve);
    const held: StoreLock = await store.lock(FILE, { unitId: "1.1", onCompromised: report });
    assert.equal(await other.clearAll(), 1);
    const event = await within(compromised, 5_000, "the compromise report");
    assert.equal(event.lock, held);
    assert.equal(event.reason, "removed");
    assert.equal(await held.verify(), false);
    const successor = await other.lock(FILE, { unitId: "2.1" });
    assert.equal(await held.release(), false);
    assert(await successor.verify());
    assert.equal((await store.check(FILE))?.unitId, "2.1");
    await successor.release();
  });

  test("onCompromised is not called for the handle's own release", async ({ store, other }) => {
    let calls = 0;
    const held = await store.lock(FILE, { unitId: "1.1", onCompromised: () => calls++ });
    await held.release();
    const successor = await other.lock(FILE, { unitId: "2.1" });
    await sleep(100);
    assert.equal(calls, 0);
    await successor.release();
  });

  test("bad arguments are rejected before anything is locked", async ({ store }) => {
    await assert.rejects(store.acquire("", pid, FILE), TypeError);
    await assert.rejects(store.acquire("1.1", -1, FILE), RangeError);
    await assert.rejects(store.acquire("1.1", pid, ""), TypeError);
    await assert.rejects(store.lock(FILE, { unitId: "" }), TypeError);
    await assert.rejects(store.lock(FILE, { unitId: "1.1", timeoutMs: -5 }), RangeError);
    await assert.rejects(store.acquireWait("1.1", pid, FILE, { timeoutMs: NaN }), RangeError);
    await assert.rejects(store.releaseAllForUnit(""), TypeError);
    assert.equal(await store.check(FILE), null);
  });
}
