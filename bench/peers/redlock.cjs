// The Node side of bench/redis_peers.ts: times acquire+release round trips with redlock (on
// ioredis, the client it is built for) against one Redis server, and prints JSON.
// Usage: node redlock.cjs <url> <redlock|floor> <n>
//   redlock  redlock.acquire([key], 10000) + lock.release(), single server, no retries
//   floor    ioredis SET NX PX + DEL: the two round trips any lock needs, nothing else
"use strict";
const { randomUUID } = require("node:crypto");
const Redis = require("ioredis");
const { default: Redlock } = require("redlock");

const [url, scenario, count] = process.argv.slice(2);
const BATCH = 200;
const key = `agentlock-bench:${randomUUID()}:target`;

async function batches(n, cycle) {
  const result = [];
  for (let i = 0; i < n / BATCH; i++) {
    const start = performance.now();
    for (let j = 0; j < BATCH; j++) await cycle();
    result.push(((performance.now() - start) * 1000) / BATCH);
  }
  return result;
}

async function main() {
  const client = new Redis(url);
  let result;
  if (scenario === "floor") {
    result = await batches(Number(count), async () => {
      await client.set(key, "x", "PX", 10000, "NX");
      await client.del(key);
    });
  } else {
    const redlock = new Redlock([client], { retryCount: 0 });
    result = await batches(Number(count), async () => {
      const lock = await redlock.acquire([key], 10000);
      await lock.release();
    });
  }
  await client.quit();
  console.log(JSON.stringify({ batches: result }));
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
