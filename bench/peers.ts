// Measures agentlock against the Node lock libraries people would otherwise use, side by side on
// the same temporary directory, alternating rounds, and prints one table of medians and ratios.
// It also writes the table to bench/results/peers.md (git-ignored) for the README.
//
// Usage: deno task bench:peers [--quick]

import { acquireSync } from "../mod.ts";
import { ensurePeers, median, PEERS } from "./peers/setup.ts";

const quick = Deno.args.includes("--quick");
const ROOT = new URL("..", import.meta.url).pathname;
const DENO_FLAGS = ["--allow-read", "--allow-write", "--allow-run", "--allow-sys=hostname"];
const ROUNDS = quick ? 2 : 5;
const CYCLES = quick ? 400 : 6000;
const HANDOFFS = quick ? 8 : 40;
const CONTEND_MS = quick ? 2_000 : 10_000;
const CONTENDERS = 8;
const STARTS = quick ? 5 : 20;
const LIST_SIZES = quick ? [100, 1000] : [100, 1000, 10_000];

const decoder = new TextDecoder();

async function run(command: string, args: string[]): Promise<Record<string, unknown>> {
  const out = await new Deno.Command(command, { args, stdout: "piped", stderr: "piped" }).output();
  if (!out.success) {
    throw new Error(`${command} ${args.join(" ")} failed:\n${decoder.decode(out.stderr)}`);
  }
  return JSON.parse(decoder.decode(out.stdout));
}

const ours = (scenario: string, dir: string, n: number) =>
  run(Deno.execPath(), ["run", ...DENO_FLAGS, `${ROOT}bench/ours.ts`, scenario, dir, String(n)]);
const peer = (lib: string, scenario: string, dir: string, n: number) =>
  run("node", [`${PEERS}/peer.cjs`, scenario, lib, dir, String(n)]);

function freshDir(): string {
  return Deno.makeTempDirSync({ prefix: "agentlock-peers-" });
}

const fmt = (value: number, digits = 1) => value.toFixed(digits);
const rows: string[][] = [];
const row = (...cells: string[]) => {
  rows.push(cells);
  console.log(cells.join(" | "));
};

ensurePeers(["proper-lockfile", "lockfile"]);

// 1. Uncontended cycle: take and free one lock, nobody else around.
const cycleNames: [string, (dir: string) => Promise<Record<string, unknown>>][] = [
  ["Deno sync floor (create+write+close+remove)", (d) => ours("floor", d, CYCLES)],
  ["Deno async floor (same calls, awaited)", (d) => ours("floor-async", d, CYCLES)],
  ["agentlock acquireSync + releaseSync", (d) => ours("cycle", d, CYCLES)],
  ["agentlock await acquire + release", (d) => ours("cycle-async", d, CYCLES)],
  ["proper-lockfile 4.1.2 lock + release", (d) => peer("proper-lockfile", "cycle", d, CYCLES)],
  ["lockfile 1.0.4 lock + unlock", (d) => peer("lockfile", "cycle", d, CYCLES)],
];
const cycleSamples = new Map<string, number[]>(cycleNames.map(([name]) => [name, []]));
for (let round = 0; round < ROUNDS; round++) {
  const order = round % 2 ? [...cycleNames].reverse() : cycleNames;
  for (const [name, measure] of order) {
    const result = await measure(freshDir());
    // The first batches of each process warm the JIT and the caches; they are left out.
    cycleSamples.get(name)!.push(...(result.batches as number[]).slice(quick ? 1 : 5));
  }
}
const cycle = new Map([...cycleSamples].map(([name, samples]) => [name, median(samples)]));
const floor = cycle.get(cycleNames[0][0])!;
const syncCycle = cycle.get(cycleNames[2][0])!;
console.log("\nuncontended acquire + release, median µs per cycle");
row("what", "µs per cycle", "× Deno sync floor", "agentlock sync is … faster");
for (const [name, us] of cycle) {
  row(
    name,
    fmt(us),
    fmt(us / floor, 2),
    name.startsWith("agentlock") ? "" : fmt(us / syncCycle, 2),
  );
}

// 2. Hand-off: the holder releases, a waiter holds. Latency from release to hold.
console.log("\nhand-off (release -> waiter holds), median ms");
const handoffs = new Map<string, number[]>();
for (let round = 0; round < ROUNDS; round++) {
  for (
    const [name, measure] of [
      ["agentlock acquireWait (watchFs + polling)", () => ours("handoff", freshDir(), HANDOFFS)],
      [
        "lockfile 1.0.4 (wait, pollPeriod 10 ms)",
        () => peer("lockfile", "handoff", freshDir(), HANDOFFS),
      ],
      [
        "proper-lockfile 4.1.2 (retries 1..50 ms)",
        () => peer("proper-lockfile", "handoff", freshDir(), HANDOFFS),
      ],
    ] as const
  ) {
    const result = await measure();
    handoffs.set(name, [...(handoffs.get(name) ?? []), ...(result.latencies as number[])]);
  }
}
const ourHandoff = median(handoffs.values().next().value!);
row("what", "median ms", "p90 ms", "× agentlock");
for (const [name, samples] of handoffs) {
  const sorted = [...samples].sort((a, b) => a - b);
  row(
    name,
    fmt(median(samples), 2),
    fmt(sorted[Math.floor(sorted.length * 0.9)], 2),
    fmt(median(samples) / ourHandoff, 1),
  );
}

// 3. listLocks against reading the directory and each file once, at growing sizes.
console.log("\nlistLocks, µs per lock (median of 7 alternating rounds)");
row("locks", "floor µs/lock", "listLocks µs/lock", "× floor");
for (const size of LIST_SIZES) {
  const result = await ours("list", freshDir(), size);
  const f = median(result.floor as number[]);
  const o = median(result.ours as number[]);
  row(String(size), fmt(f, 2), fmt(o, 2), fmt(o / f, 2));
}

// 4. Contention: 8 processes on one lock, each looping wait -> hold -> release.
console.log(`\ncontention: ${CONTENDERS} processes on one lock for ${CONTEND_MS / 1000} s`);
row("what", "acquisitions/s", "per process min..max", "spread (max/min)");
for (
  const [name, measure] of [
    ["agentlock", (dir: string) => ours("contend", dir, CONTEND_MS)],
    ["proper-lockfile 4.1.2", (dir: string) => peer("proper-lockfile", "contend", dir, CONTEND_MS)],
    ["lockfile 1.0.4", (dir: string) => peer("lockfile", "contend", dir, CONTEND_MS)],
  ] as const
) {
  const dir = freshDir();
  const results = await Promise.all(Array.from({ length: CONTENDERS }, () => measure(dir)));
  const counts = results.map((r) => r.acquired as number);
  const total = counts.reduce((a, b) => a + b, 0);
  const min = Math.min(...counts);
  const max = Math.max(...counts);
  row(
    name,
    fmt(total / (CONTEND_MS / 1000), 0),
    `${min}..${max}`,
    min ? fmt(max / min, 2) : "∞",
  );
}

// 5. Cold start: the CLI's `list` against `deno run` of an empty script.
console.log("\ncold start, median ms");
const empty = `${freshDir()}/empty.ts`;
Deno.writeTextFileSync(empty, "");
// Ten live locks held by this process, so that `list` reads, parses and probes real files.
const listDir = `${freshDir()}/.mana`;
for (let i = 0; i < 10; i++) acquireSync(listDir, "1.1", Deno.pid, `src/file-${i}.ts`);
const startTimes = { empty: [] as number[], list: [] as number[] };
for (let i = 0; i < STARTS; i++) {
  for (const which of ["empty", "list"] as const) {
    const args = which === "empty"
      ? ["run", empty]
      : ["run", ...DENO_FLAGS, `${ROOT}src/cli.ts`, "list", "--dir", listDir];
    const start = performance.now();
    const out = await new Deno.Command(Deno.execPath(), { args, stdout: "null", stderr: "null" })
      .output();
    startTimes[which].push(performance.now() - start);
    if (!out.success) throw new Error(`${args.join(" ")} failed`);
  }
}
const emptyMs = median(startTimes.empty);
const listMs = median(startTimes.list);
row("what", "median ms", "× empty script");
row("deno run empty.ts", fmt(emptyMs), "1.00");
row("agentlock CLI list (10 locks)", fmt(listMs), fmt(listMs / emptyMs, 2));

const machine = `${Deno.build.os} ${Deno.build.arch}, ${navigator.hardwareConcurrency} cores, ` +
  `Deno ${Deno.version.deno}, ${new Date().toISOString().slice(0, 10)}${quick ? ", --quick" : ""}`;
const markdown = [`Measured on ${machine}.`, ""];
for (const cells of rows) {
  const isHeader = cells[0] === "what" || cells[0] === "locks";
  if (isHeader) {
    markdown.push(
      "",
      `| ${cells.join(" | ")} |`,
      `|${cells.map(() => "---").join("|")}|`,
    );
  } else markdown.push(`| ${cells.join(" | ")} |`);
}
Deno.mkdirSync(`${ROOT}bench/results`, { recursive: true });
Deno.writeTextFileSync(`${ROOT}bench/results/peers.md`, markdown.join("\n") + "\n");
console.log(`\n${machine}\nwritten to bench/results/peers.md`);
