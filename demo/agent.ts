/**
 * One agent of the demo: takes and releases locks on a few files as a coding agent would, and
 * reports each step as one JSON line on stdout. It stops, releasing what it holds, when its stdin
 * closes.
 *
 * Usage: `deno run --allow-read=<dir> --allow-write=<dir> --allow-run --allow-sys=hostname
 * demo/agent.ts '<config json>'`, where the config is an {@linkcode AgentConfig}.
 *
 * @module
 */

import { acquire, checkLock, release } from "../mod.ts";

/** What the demo tells an agent to do. */
export interface AgentConfig {
  /** The mana directory. */
  dir: string;
  /** This agent's unit id. */
  unit: string;
  /** The files to compete for. */
  files: string[];
  /** Take this file and hold it until killed or stopped, instead of competing. */
  hold?: string;
  /** How long to compete before parking, in milliseconds. */
  workMs?: number;
}

/** One step, as printed on stdout. */
export interface AgentEvent {
  /** What happened. */
  event: "ready" | "acquired" | "released" | "blocked" | "parked";
  /** The agent's unit id. */
  unit: string;
  /** The agent's pid. */
  pid: number;
  /** The file concerned. */
  file?: string;
  /** For `blocked`: who holds the file. */
  holder?: { unit: string; pid: number };
  /** For `parked`: what the agent keeps holding. */
  holding?: string[];
}

const config: AgentConfig = JSON.parse(Deno.args[0]);
const { dir, unit, files } = config;
const held = new Set<string>();

function emit(event: Omit<AgentEvent, "unit" | "pid">): void {
  console.log(JSON.stringify({ ...event, unit, pid: Deno.pid }));
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const between = (min: number, max: number) => min + Math.random() * (max - min);

let stopping = false;
const stopped = (async () => {
  for await (const _ of Deno.stdin.readable) {
    // The demo never writes; it closes stdin to stop the agent.
  }
  stopping = true;
})();

async function take(file: string): Promise<boolean> {
  if (!(await acquire(dir, unit, Deno.pid, file))) return false;
  held.add(file);
  emit({ event: "acquired", file });
  return true;
}

if (config.hold) {
  await take(config.hold);
  emit({ event: "ready" });
} else {
  emit({ event: "ready" });
  const end = Date.now() + (config.workMs ?? 3000);
  let lastBlocked = "";
  while (Date.now() < end && !stopping) {
    const file = files[Math.floor(Math.random() * files.length)];
    if (await take(file)) {
      await sleep(between(400, 800));
      if (Date.now() >= end) break; // keep it: the demo lists what agents hold at the end
      await release(dir, unit, Deno.pid, file);
      held.delete(file);
      emit({ event: "released", file });
    } else {
      const holder = await checkLock(dir, file);
      const key = holder ? `${file} ${holder.unitId} ${holder.pid}` : "";
      if (holder && key !== lastBlocked) {
        emit({ event: "blocked", file, holder: { unit: holder.unitId, pid: holder.pid } });
      }
      lastBlocked = key;
    }
    await sleep(between(100, 250));
  }
  if (held.size === 0 && !stopping) {
    for (const file of files) if (await take(file)) break;
  }
  emit({ event: "parked", holding: [...held] });
}

await stopped;
for (const file of held) await release(dir, unit, Deno.pid, file);
