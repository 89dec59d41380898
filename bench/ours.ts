// The Deno side of bench/peers.ts: measures agentlock (or Deno's floor) in one scenario and
// prints JSON, in the same shape as peers/peer.cjs.
// Usage: deno run -A ours.ts <cycle|cycle-async|floor|floor-async|handoff|contend|list> <dir> <n>

import { acquire, acquireSync, listLocks, release, releaseSync } from "../mod.ts";
import { acquireWait } from "../src/wait.ts";

const [scenario, dir, arg] = Deno.args;
const manaDir = `${dir}/.mana`;
const FILE = "target.txt";
const unit = `u${Deno.pid}`;
const bytes = new TextEncoder().encode(
  JSON.stringify({ unit_id: "1.1", pid: Deno.pid, file_path: FILE, locked_at: 1 }, null, 2),
);
const BATCH = 200;

async function batches(count: number, cycle: () => unknown): Promise<{ batches: number[] }> {
  const result: number[] = [];
  for (let i = 0; i < count / BATCH; i++) {
    const start = performance.now();
    for (let j = 0; j < BATCH; j++) await cycle();
    result.push(((performance.now() - start) * 1000) / BATCH);
  }
  return { batches: result };
}

const floorPath = `${dir}/floor.lock`;

const scenarios: Record<string, (n: number) => Promise<unknown>> = {
  floor: (n) =>
    batches(n, () => {
      const file = Deno.openSync(floorPath, { write: true, createNew: true });
      file.writeSync(bytes);
      file.close();
      Deno.removeSync(floorPath);
    }),
  "floor-async": (n) =>
    batches(n, async () => {
      const file = await Deno.open(floorPath, { write: true, createNew: true });
      await file.write(bytes);
      file.close();
      await Deno.remove(floorPath);
    }),
  cycle: (n) =>
    batches(n, () => {
      if (!acquireSync(manaDir, unit, Deno.pid, FILE)) throw new Error("held");
      releaseSync(manaDir, unit, Deno.pid, FILE);
    }),
  "cycle-async": (n) =>
    batches(n, async () => {
      if (!(await acquire(manaDir, unit, Deno.pid, FILE))) throw new Error("held");
      await release(manaDir, unit, Deno.pid, FILE);
    }),
  async handoff(rounds) {
    const latencies: number[] = [];
    for (let i = 0; i < rounds; i++) {
      acquireSync(manaDir, "holder", Deno.pid, FILE);
      let released = 0;
      const waiter = acquireWait(manaDir, "waiter", Deno.pid, FILE).then(() => {
        latencies.push(performance.now() - released);
        releaseSync(manaDir, "waiter", Deno.pid, FILE);
      });
      await new Promise((resolve) => setTimeout(resolve, 20 + Math.random() * 5));
      released = performance.now();
      releaseSync(manaDir, "holder", Deno.pid, FILE);
      await waiter;
    }
    return { latencies };
  },
  async contend(ms) {
    const deadline = Date.now() + ms;
    let acquired = 0;
    while (Date.now() < deadline) {
      await acquireWait(manaDir, unit, Deno.pid, FILE);
      acquired++;
      releaseSync(manaDir, unit, Deno.pid, FILE);
    }
    return { acquired };
  },
  async list(count) {
    // Seed `count` locks once, then time the floor (read the directory and each file once)
    // and listLocks, alternating.
    const locks = `${manaDir}/locks`;
    for (let i = 0; i < count; i++) acquireSync(manaDir, unit, Deno.pid, `src/file-${i}.ts`);
    const floor: number[] = [];
    const ours: number[] = [];
    for (let round = 0; round < 7; round++) {
      let start = performance.now();
      for (const entry of Deno.readDirSync(locks)) {
        if (entry.name.endsWith(".lock")) Deno.readFileSync(`${locks}/${entry.name}`);
      }
      floor.push(((performance.now() - start) * 1000) / count);
      start = performance.now();
      if ((await listLocks(manaDir)).length !== count) throw new Error("wrong count");
      ours.push(((performance.now() - start) * 1000) / count);
    }
    return { floor, ours };
  },
};

console.log(JSON.stringify(await scenarios[scenario](Number(arg))));
