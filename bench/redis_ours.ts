// The Deno side of bench/redis_peers.ts: times acquire+release round trips against one Redis
// server and prints JSON, in the same shape as peers/redlock.cjs.
// Usage: deno run --allow-net=127.0.0.1 --allow-sys=hostname redis_ours.ts <url> <scenario> <n>
//   acquire  RedisLockStore acquire() + release()
//   lock     RedisLockStore lock() + handle release()
//   floor    node-redis SET NX PX + DEL: the two round trips any lock needs, nothing else

import { createClient } from "npm:@redis/client@6.4.0";
import { RedisLockStore } from "../src/redis.ts";

const [url, scenario, count] = Deno.args;
const BATCH = 200;
const prefix = `agentlock-bench:${crypto.randomUUID()}:`;

async function batches(n: number, cycle: () => Promise<unknown>): Promise<number[]> {
  const result: number[] = [];
  for (let i = 0; i < n / BATCH; i++) {
    const start = performance.now();
    for (let j = 0; j < BATCH; j++) await cycle();
    result.push(((performance.now() - start) * 1000) / BATCH);
  }
  return result;
}

let result: number[];
if (scenario === "floor") {
  const client = createClient({ url, RESP: 2, maintNotifications: "disabled" });
  await client.connect();
  const key = `${prefix}floor`;
  result = await batches(Number(count), async () => {
    await client.sendCommand(["SET", key, "x", "NX", "PX", "10000"]);
    await client.sendCommand(["DEL", key]);
  });
  client.destroy();
} else {
  const store = new RedisLockStore({ url, prefix });
  const pid = Deno.pid;
  result = await batches(
    Number(count),
    scenario === "lock"
      ? async () => await (await store.lock("target.txt", { unitId: "bench" })).release()
      : async () => {
        await store.acquire("bench", pid, "target.txt");
        await store.release("bench", pid, "target.txt");
      },
  );
  await store.close();
}
console.log(JSON.stringify({ batches: result }));
