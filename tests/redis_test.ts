// The shared store behaviour (store_suite.ts) on Redis, then what only the Redis store does:
// keys and values, leases, fencing tokens, SCAN, and errors. Uses a real server (see
// fixtures/redis_server.ts); skipped, saying why, where none can be started.

import assert from "node:assert/strict";
import { lockFilenameSync } from "../mod.ts";
import {
  LockError,
  type RedisLock,
  RedisLockStore,
  type RedisLockStoreOptions,
  RedisRefusedError,
  RedisUnavailableError,
  type StoreCompromisedEvent,
} from "../src/redis.ts";
import { sleep, within } from "./fixtures/measure.ts";
import { type Admin, admin as connectAdmin, freePort, testRedis } from "./fixtures/redis_server.ts";
import { storeSuite } from "./store_suite.ts";

const redis = await testRedis();
const ignore = "skip" in redis;
if ("skip" in redis) console.log(`redis tests skipped: ${redis.skip}`);
const url = "url" in redis ? redis.url : "";

function options(extra: RedisLockStoreOptions = {}): RedisLockStoreOptions {
  return { url, prefix: `agentlock-test:${crypto.randomUUID()}:`, leaseMs: 1_500, ...extra };
}

storeSuite("redis store", () => {
  const shared = options();
  return Promise.resolve({ store: new RedisLockStore(shared), other: new RedisLockStore(shared) });
}, { ignore });

const pid = Deno.pid;
const FILE = "src/a.ts";

/** A test that gets a fresh store (closed at the end) and a plain client to the same server. */
function redisTest(
  name: string,
  fn: (store: RedisLockStore, admin: Admin, prefix: string) => Promise<void>,
  extra: RedisLockStoreOptions = {},
): void {
  Deno.test({
    name: `redis: ${name}`,
    ignore,
    async fn() {
      const opts = options(extra);
      const store = new RedisLockStore(opts);
      const plain = await connectAdmin(url);
      try {
        await fn(store, plain, opts.prefix!);
      } finally {
        await store.close();
        plain.close();
      }
    },
  });
}

redisTest("a lock is the file store's name under the prefix, JSON, with a lease", async (
  store,
  admin,
  prefix,
) => {
  const key = `${prefix}${lockFilenameSync(FILE)}`;
  assert.equal(await store.keyOf(FILE), key);
  await using held = await store.lock(FILE, { unitId: "1.1" });
  assert.equal(held.key, key);
  const json = JSON.parse(await admin.send("GET", key) as string);
  assert.deepEqual(Object.keys(json), [
    "unit_id",
    "pid",
    "file_path",
    "locked_at",
    "host",
    "token",
    "fence",
  ]);
  assert.equal(json.unit_id, "1.1");
  assert.equal(json.pid, pid);
  assert.equal(json.file_path, FILE);
  assert.equal(json.host, Deno.hostname());
  assert.equal(json.fence, held.fencingToken);
  assert.equal(held.info.fencingToken, held.fencingToken);
  const pttl = await admin.send("PTTL", key) as number;
  assert(pttl > 0 && pttl <= 1_500, `PTTL ${pttl}`);
});

redisTest("a held lease is renewed; a holder that stops renewing loses the lock", async (
  store,
  admin,
  prefix,
) => {
  assert(await store.acquire("1.1", pid, FILE));
  await sleep(1_000); // more than three leases of 300 ms
  assert.equal((await store.check(FILE))?.unitId, "1.1");
  assert(await store.release("1.1", pid, FILE));

  // A holder that died: its value, with a lease nobody renews.
  const key = `${prefix}${lockFilenameSync(FILE)}`;
  const dead = { unit_id: "dead", pid: 1, file_path: FILE, locked_at: 1, token: "x", fence: 1 };
  await admin.send("SET", key, JSON.stringify(dead), "PX", "300");
  assert.equal(await store.acquire("1.1", pid, FILE), false);
  const started = performance.now();
  assert(await store.acquireWait("1.1", pid, FILE, { timeoutMs: 5_000 }));
  const waited = performance.now() - started;
  console.log(
    `taken ${waited.toFixed(0)} ms after a dead holder's lease of 300 ms began to run out`,
  );
  assert(waited < 1_000, `waited ${waited} ms`);
}, { leaseMs: 300 });

redisTest("fencing tokens grow with every acquisition, also after the counter is lost", async (
  store,
  admin,
  prefix,
) => {
  const other = new RedisLockStore({ url, prefix });
  try {
    const a = await store.lock("a.ts", { unitId: "1.1" });
    const b = await store.lock("b.ts", { unitId: "1.1" });
    assert(b.fencingToken > a.fencingToken);
    const counter = await admin.send("GET", `${prefix}fence`);
    assert.equal(await other.acquire("2.1", pid, "a.ts"), false);
    assert.equal(await admin.send("GET", `${prefix}fence`), counter, "a failed attempt spent one");
    await a.release();
    assert(await other.acquire("2.1", pid, "a.ts"));
    const c = (await other.check("a.ts"))!.fencingToken;
    assert(c > b.fencingToken);
    // A restart without persistence loses the counter; the server clock keeps tokens growing.
    await admin.send("DEL", `${prefix}fence`);
    const d = await store.lock("d.ts", { unitId: "1.1" });
    assert(d.fencingToken > c, `${d.fencingToken} after ${c}`);
    assert(Number.isSafeInteger(d.fencingToken));
    await b.release();
    await d.release();
  } finally {
    await other.close();
  }
});

redisTest("list and clearAll use SCAN, not KEYS, and stay inside the prefix", async (
  store,
  admin,
  prefix,
) => {
  const count = 2_500;
  const values: string[] = [];
  for (let i = 0; i < count; i++) {
    const path = `src/file-${i}.ts`;
    const unit = i % 2 ? "odd" : "even";
    const json = {
      unit_id: unit,
      pid,
      file_path: path,
      locked_at: 1,
      token: `t${i}`,
      fence: i + 1,
    };
    values.push(`${prefix}${lockFilenameSync(path)}`, JSON.stringify(json));
  }
  for (let i = 0; i < values.length; i += 1_000) {
    await admin.send("MSET", ...values.slice(i, i + 1_000));
  }
  // Keys of a longer prefix, and a key that is not a lock, are not this store's locks.
  const nested = `${prefix}nested:${lockFilenameSync("x")}`;
  await admin.send("SET", nested, values[1]);
  await admin.send("SET", `${prefix}${"0".repeat(64)}.lock`, "not json");

  // A user who may not run KEYS: listing still works.
  const user = `lister-${crypto.randomUUID()}`;
  await admin.send("ACL", "SETUSER", user, "on", ">pw", "~*", "&*", "+@all", "-keys");
  const lister = new RedisLockStore({ url: withUser(url, user, "pw"), prefix });
  try {
    const started = performance.now();
    const locks = await lister.list();
    console.log(`listed ${locks.length} locks in ${(performance.now() - started).toFixed(0)} ms`);
    assert.equal(locks.length, count);
    assert.equal(await lister.releaseAllForUnit("odd"), count / 2);
    assert.equal((await store.list()).length, count / 2);
    assert.equal(await store.clearAll(), count / 2);
    assert.deepEqual(await store.list(), []);
    assert.equal(await admin.send("EXISTS", nested), 1);
  } finally {
    await lister.close();
    await admin.send("ACL", "DELUSER", user);
  }
});

redisTest("refusals say what to do: password, ACL, and keys that are not locks", async (
  store,
  admin,
  prefix,
) => {
  const user = `agent-${crypto.randomUUID()}`;
  await admin.send(
    "ACL",
    "SETUSER",
    user,
    "on",
    ">right",
    "~*",
    "&*",
    "+@all",
    "-evalsha",
    "-eval",
  );
  const port = new URL(url).port;
  try {
    const wrong = new RedisLockStore({ url: withUser(url, user, "wrong"), prefix });
    const started = performance.now();
    await assert.rejects(wrong.check(FILE), (error) => {
      assert(error instanceof RedisRefusedError);
      assert.equal(error.code, "WRONGPASS");
      assert.match(error.message, new RegExp(`127\\.0\\.0\\.1:${port} refused authentication`));
      assert.match(error.message, /password/);
      assert(!error.message.includes("wrong"), "the password is never shown");
      return true;
    });
    assert(performance.now() - started < 1_500, "a refusal is not retried until the timeout");
    await wrong.close();

    const denied = new RedisLockStore({ url: withUser(url, user, "right"), prefix });
    await assert.rejects(denied.acquire("1.1", pid, FILE), (error) => {
      assert(error instanceof RedisRefusedError);
      assert.equal(error.code, "NOPERM");
      return true;
    });
    await denied.close();
  } finally {
    await admin.send("ACL", "DELUSER", user);
  }

  const key = await store.keyOf(FILE);
  await admin.send("HSET", key, "field", "value");
  for (const attempt of [() => store.acquire("1.1", pid, FILE), () => store.check(FILE)]) {
    await assert.rejects(attempt(), (error) => {
      assert(error instanceof RedisRefusedError);
      assert.equal(error.code, "WRONGTYPE");
      assert(error.message.includes(key));
      assert.match(error.message, /choose another prefix, or delete the key/);
      return true;
    });
  }
  await admin.send("DEL", key);
  await admin.send("SET", key, "somebody else's data");
  await assert.rejects(store.acquire("1.1", pid, FILE), /not an agentlock lock/);
  await assert.rejects(store.check(FILE), /not an agentlock lock/);
  assert.deepEqual(await store.list(), []);
  assert.equal(await admin.send("GET", key), "somebody else's data");
});

Deno.test({
  name: "redis: an unreachable server is a clear error within the timeout, never a hang",
  ignore,
  async fn() {
    const port = freePort(); // nothing listens there
    const store = new RedisLockStore({ url: `redis://127.0.0.1:${port}`, commandTimeoutMs: 300 });
    try {
      for (const attempt of [() => store.acquire("1.1", pid, FILE), () => store.list()]) {
        const started = performance.now();
        await assert.rejects(attempt(), (error) => {
          assert(error instanceof RedisUnavailableError);
          assert.equal(error.address, `127.0.0.1:${port}`);
          assert.match(error.message, new RegExp(`127\\.0\\.0\\.1:${port} is unreachable`));
          assert.match(error.message, /ECONNREFUSED/);
          return true;
        });
        const elapsed = performance.now() - started;
        assert(elapsed < 1_000, `took ${elapsed} ms`);
      }
      await assert.rejects(
        store.lock(FILE, { unitId: "1.1", timeoutMs: 0 }),
        RedisUnavailableError,
      );
    } finally {
      await store.close();
    }
    await assert.rejects(store.check(FILE), /closed/);
  },
});

redisTest("a lock taken over behind the holder's back is reported with the new holder", async (
  store,
  admin,
) => {
  let report!: (event: StoreCompromisedEvent<RedisLock>) => void;
  const compromised = new Promise<StoreCompromisedEvent<RedisLock>>((resolve) => report = resolve);
  const held = await store.lock(FILE, { unitId: "1.1", onCompromised: report });
  const thief = { unit_id: "9.9", pid: 1, file_path: FILE, locked_at: 1, token: "t", fence: 1 };
  await admin.send("SET", held.key, JSON.stringify(thief), "PX", "60000");
  const event = await within(compromised, 5_000, "the compromise report");
  assert.equal(event.reason, "replaced");
  assert.equal(event.holder?.unitId, "9.9");
  assert.equal(event.lock, held);
  assert.equal(await held.verify(), false);
  assert.equal(await held.release(), false);
  assert.equal((await store.check(FILE))?.unitId, "9.9");
}, { leaseMs: 600 });

redisTest("owners include the host: the same unit and pid elsewhere is someone else", async (
  _store,
  _admin,
  prefix,
) => {
  const here = new RedisLockStore({ url, prefix, host: "build-1" });
  const there = new RedisLockStore({ url, prefix, host: "build-2" });
  try {
    assert(await here.acquire("1.1", 1, FILE));
    assert.equal(await there.acquire("1.1", 1, FILE), false);
    assert.equal(await there.release("1.1", 1, FILE), false);
    assert.equal((await there.check(FILE))?.host, "build-1");
  } finally {
    await here.close();
    await there.close();
  }
});

redisTest(
  "closing releases the store's locks; later calls fail",
  async (_store, _admin, prefix) => {
    const closing = new RedisLockStore({ url, prefix });
    const observer = new RedisLockStore({ url, prefix });
    try {
      assert(await closing.acquire("1.1", pid, "a.ts"));
      const held = await closing.lock("b.ts", { unitId: "1.1" });
      await closing.close();
      await closing.close();
      assert.deepEqual(await observer.list(), []);
      assert.equal(await held.verify(), false);
      await assert.rejects(closing.acquire("1.1", pid, "a.ts"), LockError);
    } finally {
      await observer.close();
    }
  },
);

Deno.test("redis: options are checked", () => {
  assert.throws(() => new RedisLockStore({ url: "http://x" }), TypeError);
  assert.throws(() => new RedisLockStore({ url: "not a url" }), TypeError);
  assert.throws(() => new RedisLockStore({ prefix: "" }), TypeError);
  assert.throws(() => new RedisLockStore({ leaseMs: 10 }), RangeError);
  assert.throws(() => new RedisLockStore({ commandTimeoutMs: 0 }), RangeError);
});

function withUser(base: string, user: string, password: string): string {
  const parsed = new URL(base);
  parsed.username = user;
  parsed.password = password;
  return parsed.href;
}
