// In-process figures: `deno bench --allow-read --allow-write --allow-run --allow-sys=hostname bench/`
// The "floor" group members are the file system calls a lock cycle cannot do without.

import {
  acquire,
  acquireSync,
  listLocks,
  lockFilename,
  lockFilenameSync,
  release,
  releaseSync,
} from "../mod.ts";
import { createHash } from "node:crypto";

const manaDir = `${Deno.makeTempDirSync({ prefix: "agentlock-bench-" })}/.mana`;
const floorDir = Deno.makeTempDirSync({ prefix: "agentlock-floor-" });
const bytes = new TextEncoder().encode(
  JSON.stringify(
    { unit_id: "1.1", pid: Deno.pid, file_path: "src/main.ts", locked_at: 1796400465 },
    null,
    2,
  ),
);
const floorPath = `${floorDir}/x.lock`;

Deno.bench("floor: openSync(createNew)+writeSync+close+removeSync", {
  group: "cycle",
  baseline: true,
}, () => {
  const file = Deno.openSync(floorPath, { write: true, createNew: true });
  file.writeSync(bytes);
  file.close();
  Deno.removeSync(floorPath);
});

Deno.bench("floor: the same four calls, awaited", { group: "cycle" }, async () => {
  const file = await Deno.open(floorPath, { write: true, createNew: true });
  await file.write(bytes);
  file.close();
  await Deno.remove(floorPath);
});

Deno.bench("agentlock: acquireSync + releaseSync", { group: "cycle" }, () => {
  if (!acquireSync(manaDir, "1.1", Deno.pid, "src/main.ts")) throw new Error("not acquired");
  releaseSync(manaDir, "1.1", Deno.pid, "src/main.ts");
});

Deno.bench("agentlock: await acquire + await release", { group: "cycle" }, async () => {
  if (!(await acquire(manaDir, "1.1", Deno.pid, "src/main.ts"))) throw new Error("not acquired");
  await release(manaDir, "1.1", Deno.pid, "src/main.ts");
});

let n = 0;
Deno.bench("crypto.subtle.digest (uncached lockFilename)", { group: "hash" }, async () => {
  await crypto.subtle.digest("SHA-256", new TextEncoder().encode(`src/file-${n++}.ts`));
});
Deno.bench("node:crypto createHash", { group: "hash", baseline: true }, () => {
  createHash("sha256").update(`src/file-${n++}.ts`).digest("hex");
});
Deno.bench("lockFilename (cached)", { group: "hash" }, async () => {
  await lockFilename("src/main.ts");
});
Deno.bench("lockFilenameSync (cached)", { group: "hash" }, () => {
  lockFilenameSync("src/main.ts");
});

const listDir = `${Deno.makeTempDirSync({ prefix: "agentlock-list-" })}/.mana`;
for (let i = 0; i < 1000; i++) acquireSync(listDir, "1.1", Deno.pid, `src/file-${i}.ts`);
const locksDir = `${listDir}/locks`;
Deno.bench("floor: readDir + readFile of each of 1000 locks", {
  group: "list 1000",
  baseline: true,
}, () => {
  for (const entry of Deno.readDirSync(locksDir)) {
    if (entry.name.endsWith(".lock")) Deno.readFileSync(`${locksDir}/${entry.name}`);
  }
});
Deno.bench("agentlock: listLocks of 1000 locks", { group: "list 1000" }, async () => {
  if ((await listLocks(listDir)).length !== 1000) throw new Error("wrong count");
});
