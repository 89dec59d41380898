// On-disk compatibility with mana-core's Rust code: names, bytes and keys.

import assert from "node:assert/strict";
import { acquire, checkLock, listLocks, lockFilename, lockFilenameSync, release } from "../mod.ts";
import { decodeLock, encodeLock } from "../src/format.ts";
import { lockPathOf, tempManaDir } from "./_helpers.ts";

// What `serde_json::to_string_pretty(&LockInfo)` writes: two-space indent, no trailing newline.
function rustLockBytes(pid: number, filePath: string, lockedAt: number): string {
  return `{\n  "unit_id": "1.1",\n  "pid": ${pid},\n  "file_path": ${
    JSON.stringify(filePath)
  },\n  "locked_at": ${lockedAt}\n}`;
}

Deno.test("lock file names are the SHA-256 hex of the path's UTF-8 bytes, as mana names them", async () => {
  // Reference digests from `printf '%s' PATH | sha256sum`.
  const cases: [string, string][] = [
    ["/tmp/test.rs", "0d81af739b486de6f1936acca57c2f0336ab5ab272488d22245df1f32cb9968a"],
    ["src/ünïcødé 文件.ts", "f5a0663b39cfea5b416cb81d16c3affeb9ceada210f58b78181e8d6d6ed9a054"],
  ];
  for (const [path, hex] of cases) {
    assert.equal(await lockFilename(path), `${hex}.lock`);
    assert.equal(lockFilenameSync(path), `${hex}.lock`);
  }
});

Deno.test("the sync and async file names agree on many paths", async () => {
  const paths = Array.from({ length: 200 }, (_, i) => `dir ${i}/ファイル-${i * 7919}.ts`);
  for (const path of paths) {
    const sync = lockFilenameSync(path);
    assert.match(sync, /^[0-9a-f]{64}\.lock$/);
    assert.equal(await lockFilename(path), sync);
  }
});

Deno.test("file names reject paths that have no UTF-8 form", async () => {
  assert.throws(() => lockFilenameSync("bad\uD800.ts"), TypeError);
  await assert.rejects(lockFilename("bad\uD800.ts"), TypeError);
  assert.throws(() => lockFilenameSync(""), TypeError);
});

Deno.test("encodeLock writes the exact bytes serde_json writes for the four mana fields", () => {
  const bytes = encodeLock({ unitId: "1.1", pid: 4242, filePath: '/tmp/a "b".rs', lockedAt: 7 });
  assert.equal(new TextDecoder().decode(bytes), rustLockBytes(4242, '/tmp/a "b".rs', 7));
});

Deno.test("a lock written byte for byte as Rust writes it is read, listed and released", async () => {
  const manaDir = tempManaDir();
  const lockPath = lockPathOf(manaDir, "/tmp/test.rs");
  Deno.writeTextFileSync(lockPath, rustLockBytes(Deno.pid, "/tmp/test.rs", 1700000000));

  assert.deepEqual(await checkLock(manaDir, "/tmp/test.rs"), {
    unitId: "1.1",
    pid: Deno.pid,
    filePath: "/tmp/test.rs",
    lockedAt: 1700000000,
  });
  assert.equal((await listLocks(manaDir)).length, 1);
  // Same unit and pid: re-acquiring is idempotent, another unit is refused.
  assert.equal(await acquire(manaDir, "1.1", Deno.pid, "/tmp/test.rs"), true);
  assert.equal(await acquire(manaDir, "2.1", Deno.pid, "/tmp/test.rs"), false);
  assert.equal(await release(manaDir, "1.1", Deno.pid, "/tmp/test.rs"), true);
  assert.equal(await checkLock(manaDir, "/tmp/test.rs"), null);
});

Deno.test("the bytes acquire writes start with mana's four keys, in order, pretty-printed", async () => {
  const manaDir = tempManaDir();
  const before = Math.floor(Date.now() / 1000);
  assert.ok(await acquire(manaDir, "3.1", Deno.pid, "src/lib.rs"));
  const text = Deno.readTextFileSync(lockPathOf(manaDir, "src/lib.rs"));
  const lines = text.split("\n");
  assert.equal(lines[0], "{");
  assert.equal(lines[1], '  "unit_id": "3.1",');
  assert.equal(lines[2], `  "pid": ${Deno.pid},`);
  assert.equal(lines[3], '  "file_path": "src/lib.rs",');
  assert.match(lines[4], /^ {2}"locked_at": \d+,$/);
  assert.equal(lines.at(-1), "}");
  const json = JSON.parse(text);
  assert.ok(Number.isInteger(json.locked_at) && json.locked_at >= before);
  // Extra keys (ignored by Rust) identify the holder beyond its pid.
  assert.equal(typeof json.token, "string");
  assert.equal(json.host, Deno.hostname());
  assert.deepEqual(Object.keys(json).slice(0, 4), ["unit_id", "pid", "file_path", "locked_at"]);
});

Deno.test("decodeLock names what is wrong with a malformed lock", () => {
  const enc = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));
  const base = { unit_id: "1", pid: 5, file_path: "a", locked_at: 1 };
  assert.equal(decodeLock(new Uint8Array()), "empty file");
  assert.equal(decodeLock(new TextEncoder().encode("{")), "not valid UTF-8 JSON");
  assert.equal(decodeLock(new Uint8Array([0x7b, 0xff, 0x7d])), "not valid UTF-8 JSON");
  assert.equal(decodeLock(enc([1])), "not a JSON object");
  assert.equal(decodeLock(enc({ ...base, unit_id: 1 })), "unit_id is not a string");
  for (const pid of [0, -1, 1.5, 2 ** 31, "5", null]) {
    assert.equal(decodeLock(enc({ ...base, pid })), "pid is not a positive 32-bit integer");
  }
  assert.equal(decodeLock(enc({ ...base, file_path: [] })), "file_path is not a string");
  assert.equal(decodeLock(enc({ ...base, locked_at: "now" })), "locked_at is not an integer");
  // Mistyped extra keys are dropped, not fatal: Rust ignores them too.
  const record = decodeLock(enc({ ...base, host: 1, start_time: "x", token: 2 }));
  assert.deepEqual(record, { unitId: "1", pid: 5, filePath: "a", lockedAt: 1 });
});

Deno.test("the synchronous SHA-256 matches Web Crypto across block boundaries", async () => {
  const { sha256Hex } = await import("../src/sha256.ts");
  for (let length = 0; length <= 200; length++) {
    const text = Array.from({ length }, (_, i) =>
      String.fromCharCode(32 + ((i * 31 + length) % 90)))
      .join("") + (length % 3 ? "é文" : "");
    const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
    const hex = Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
    assert.equal(sha256Hex(text), hex, `length ${length}`);
  }
});
