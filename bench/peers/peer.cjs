// The Node side of bench/peers.ts: measures one peer library in one scenario, prints JSON.
// Usage: node peer.cjs <cycle|handoff|contend> <proper-lockfile|lockfile> <dir> <count|ms>
"use strict";
const fs = require("node:fs");
const path = require("node:path");
const { promisify } = require("node:util");
const properLockfile = require("proper-lockfile");
const lockfile = require("lockfile");

const [scenario, lib, dir, arg] = process.argv.slice(2);
const target = path.join(dir, "target.txt");
fs.writeFileSync(target, "");
const lockfileLock = promisify(lockfile.lock);
const lockfileUnlock = promisify(lockfile.unlock);
const lockPath = target + ".lock";
const now = () => performance.now();

// How each library takes and frees the lock; `wait` asks it to wait for a held lock.
const libs = {
  "proper-lockfile": {
    async lock(wait) {
      const release = await properLockfile.lock(
        target,
        wait ? { retries: { retries: 10000, minTimeout: 1, maxTimeout: 50, factor: 1.5 } } : {},
      );
      return release;
    },
  },
  "lockfile": {
    async lock(wait) {
      await lockfileLock(lockPath, wait ? { wait: 60000, pollPeriod: 10 } : {});
      return () => lockfileUnlock(lockPath);
    },
  },
};
const { lock } = libs[lib];

async function cycle(count) {
  const batch = 200;
  const batches = [];
  for (let i = 0; i < count / batch; i++) {
    const start = now();
    for (let j = 0; j < batch; j++) await (await lock(false))();
    batches.push(((now() - start) * 1000) / batch);
  }
  return { batches };
}

async function handoff(rounds) {
  const latencies = [];
  for (let i = 0; i < rounds; i++) {
    const release = await lock(false);
    let released = 0;
    const waiter = lock(true).then((releaseWaiter) => {
      latencies.push(now() - released);
      return releaseWaiter();
    });
    await new Promise((resolve) => setTimeout(resolve, 20 + Math.random() * 5));
    released = now();
    await release();
    await waiter;
  }
  return { latencies };
}

async function contend(ms) {
  const deadline = Date.now() + ms;
  let acquired = 0;
  while (Date.now() < deadline) {
    const release = await lock(true);
    acquired++;
    await release();
  }
  return { acquired };
}

const run = { cycle, handoff, contend }[scenario];
run(Number(arg)).then((result) => console.log(JSON.stringify(result)));
