// Measures the Redis store against redlock (the npm Redis lock most people would use), on the same
// private redis-server in one run, alternating rounds, and prints one table of medians and the
// ratio. Each side also runs its client's floor: SET NX PX + DEL, the two round trips any lock
// needs. It writes the table to bench/results/redis.md (git-ignored).
//
// Usage: deno task bench:redis [--quick]

import { RedisServer } from "../tests/fixtures/redis_server.ts";
import { ensurePeers, median, PEERS } from "./peers/setup.ts";

const quick = Deno.args.includes("--quick");
const ROOT = new URL("..", import.meta.url).pathname;
const ROUNDS = quick ? 3 : 7;
const CYCLES = quick ? 1_000 : 2_000;
const decoder = new TextDecoder();

async function run(command: string, args: string[]): Promise<number[]> {
  const out = await new Deno.Command(command, { args, stdout: "piped", stderr: "piped" }).output();
  if (!out.success) {
    throw new Error(`${command} ${args.join(" ")} failed:\n${decoder.decode(out.stderr)}`);
  }
  // The first batch of each process warms the JIT and the connection; it is left out.
  return (JSON.parse(decoder.decode(out.stdout)).batches as number[]).slice(1);
}

ensurePeers(["redlock", "ioredis"]);
const server = await RedisServer.start();
const version = (await new Deno.Command("redis-server", { args: ["--version"] }).output()).stdout;
const ours = (scenario: string) =>
  run(Deno.execPath(), [
    "run",
    "--allow-net=127.0.0.1",
    "--allow-sys=hostname",
    `${ROOT}bench/redis_ours.ts`,
    server.url,
    scenario,
    String(CYCLES),
  ]);
const peer = (scenario: string) =>
  run("node", [`${PEERS}/redlock.cjs`, server.url, scenario, String(CYCLES)]);

const measures: [string, () => Promise<number[]>][] = [
  ["node-redis 6.4.0 floor in Deno (SET NX PX + DEL)", () => ours("floor")],
  ["agentlock RedisLockStore acquire + release", () => ours("acquire")],
  ["agentlock RedisLockStore lock() + release", () => ours("lock")],
  ["ioredis 5.9.3 floor in Node (SET NX PX + DEL)", () => peer("floor")],
  ["redlock 5.0.0-beta.2 acquire + release (Node)", () => peer("redlock")],
];
const samples = new Map<string, number[]>(measures.map(([name]) => [name, []]));
try {
  for (let round = 0; round < ROUNDS; round++) {
    const order = round % 2 ? [...measures].reverse() : measures;
    for (const [name, measure] of order) samples.get(name)!.push(...await measure());
  }
} finally {
  await server.stop();
}

const medians = new Map([...samples].map(([name, values]) => [name, median(values)]));
const redlock = medians.get(measures[4][0])!;
const rows = [["what", "µs per acquire+release", "× redlock"]];
for (const [name, us] of medians) rows.push([name, us.toFixed(0), (us / redlock).toFixed(2)]);
for (const cells of rows) console.log(cells.join(" | "));
const acquire = medians.get(measures[1][0])!;
const summary = `agentlock's acquire + release takes ${(acquire / redlock).toFixed(2)}× the time ` +
  `of redlock's on the same server (${acquire.toFixed(0)} µs against ${redlock.toFixed(0)} µs, ` +
  `medians of ${ROUNDS} alternating rounds of ${CYCLES} cycles).`;
const machine = `${Deno.build.os} ${Deno.build.arch}, ${navigator.hardwareConcurrency} cores, ` +
  `Deno ${Deno.version.deno}, Node ${
    decoder.decode((await new Deno.Command("node", { args: ["--version"] }).output()).stdout).trim()
  }, ${decoder.decode(version).split(" ").slice(0, 3).join(" ")}, loopback, ` +
  `${new Date().toISOString().slice(0, 10)}${quick ? ", --quick" : ""}`;
console.log(`\n${summary}\n${machine}`);
const markdown = [
  `Measured on ${machine}.`,
  "",
  `| ${rows[0].join(" | ")} |`,
  `|${rows[0].map(() => "---").join("|")}|`,
  ...rows.slice(1).map((cells) => `| ${cells.join(" | ")} |`),
  "",
  summary,
];
Deno.mkdirSync(`${ROOT}bench/results`, { recursive: true });
Deno.writeTextFileSync(`${ROOT}bench/results/redis.md`, markdown.join("\n") + "\n");
console.log("written to bench/results/redis.md");
