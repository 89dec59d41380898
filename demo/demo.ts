/**
 * `deno task demo`: several agent processes compete for a handful of files in a temporary
 * `.mana`. The demo prints who gets what as it happens, kills one holder with SIGKILL and shows
 * its lock being taken over, then runs `agentlock list`. It ends by stopping every agent and
 * removing the temporary directory.
 *
 * Permissions: `--allow-write --allow-run` (the temporary directory, the agent processes).
 *
 * @module
 */

import type { AgentConfig, AgentEvent } from "./agent.ts";

const AGENT = new URL("./agent.ts", import.meta.url).pathname;
const CLI = new URL("../src/cli.ts", import.meta.url).pathname;
const FILES = ["src/app.ts", "src/db.ts", "src/api.ts"];
const VICTIM_FILE = "src/db.ts";
const WORKERS = ["1.1", "1.2", "1.3"];
const VICTIM = "2.1";
/** How long the workers compete before they park. */
const WORK_MS = 3500;
/** When, after the workers are ready, the victim is killed. */
const KILL_AFTER_MS = 1200;
/** The whole demo gives up after this long, stopping everything. */
const DEADLINE_MS = 14_000;

const color = Deno.stdout.isTerminal() && !Deno.noColor;
const paint = (code: number) => (text: string) => color ? `\x1b[${code}m${text}\x1b[0m` : text;
const bold = paint(1);
const dim = paint(2);
const red = paint(31);
const green = paint(32);
const yellow = paint(33);
const unitColors = [paint(36), paint(35), paint(34), paint(33)];
const unitColor = new Map<string, (text: string) => string>();
const unitName = (unit: string) => {
  if (!unitColor.has(unit)) unitColor.set(unit, unitColors[unitColor.size % unitColors.length]);
  return unitColor.get(unit)!(`agent ${unit}`);
};

const started = Date.now();
const say = (text: string) => {
  const seconds = ((Date.now() - started) / 1000).toFixed(1).padStart(5);
  console.log(`${dim(`${seconds}s`)}  ${text}`);
};

interface Agent {
  unit: string;
  child: Deno.ChildProcess;
  stdin: WritableStreamDefaultWriter<Uint8Array>;
  reader: Promise<void>;
}

const agents: Agent[] = [];
const history: AgentEvent[] = [];
const waiters: { match: (event: AgentEvent) => boolean; resolve: (e: AgentEvent) => void }[] = [];
let killed: { unit: string; pid: number } | undefined;
let takenOver = false;

function onEvent(event: AgentEvent): void {
  history.push(event);
  describe(event);
  for (const waiter of [...waiters]) {
    if (waiter.match(event)) {
      waiters.splice(waiters.indexOf(waiter), 1);
      waiter.resolve(event);
    }
  }
}

function describe(event: AgentEvent): void {
  const who = unitName(event.unit);
  switch (event.event) {
    case "acquired":
      if (event.unit === VICTIM) {
        say(`${who} (pid ${event.pid}) ${green("got")} ${event.file} and never lets go`);
      } else if (killed && !takenOver && event.file === VICTIM_FILE) {
        takenOver = true;
        say(
          `${who} ${green(bold("took over"))} ${event.file}: its holder pid ${killed.pid} is gone`,
        );
      } else {
        say(`${who} ${green("got")} ${event.file}`);
      }
      break;
    case "released":
      say(`${who} ${dim("released")} ${event.file}`);
      break;
    case "blocked":
      say(
        `${who} ${yellow("waits")}: ${event.file} is held by ${unitName(event.holder!.unit)} (pid ${
          event.holder!.pid
        })`,
      );
      break;
    case "parked":
      say(
        `${who} stops working, ${
          event.holding!.length ? `keeps ${event.holding!.join(", ")}` : "holds nothing"
        }`,
      );
      break;
    case "ready":
      break;
  }
}

function waitFor(what: string, match: (event: AgentEvent) => boolean): Promise<AgentEvent> {
  const seen = history.find(match);
  if (seen) return Promise.resolve(seen);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`timed out waiting for ${what}`)),
      Math.max(0, started + DEADLINE_MS - Date.now()),
    );
    waiters.push({
      match,
      resolve: (event) => {
        clearTimeout(timer);
        resolve(event);
      },
    });
  });
}

async function readEvents(stream: ReadableStream<Uint8Array>): Promise<void> {
  let buffer = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    buffer += chunk;
    for (let end = buffer.indexOf("\n"); end !== -1; end = buffer.indexOf("\n")) {
      const line = buffer.slice(0, end).trim();
      buffer = buffer.slice(end + 1);
      if (line) onEvent(JSON.parse(line));
    }
  }
}

function spawnAgent(root: string, config: AgentConfig): Agent {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      `--allow-read=${root}`,
      `--allow-write=${root}`,
      "--allow-run",
      "--allow-sys=hostname",
      AGENT,
      JSON.stringify(config),
    ],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const agent = {
    unit: config.unit,
    child,
    stdin: child.stdin.getWriter(),
    reader: readEvents(child.stdout),
  };
  agents.push(agent);
  return agent;
}

/** Stops every agent still running: closes its stdin, then kills it if it does not exit. */
async function stopAll(): Promise<void> {
  await Promise.all(agents.map(async (agent) => {
    await agent.stdin.close().catch(() => {});
    const timer = setTimeout(() => {
      try {
        agent.child.kill("SIGKILL");
      } catch {
        // Already gone.
      }
    }, 3000);
    await agent.child.status;
    clearTimeout(timer);
    await agent.reader.catch(() => {});
  }));
}

async function runDemo(root: string): Promise<void> {
  const dir = `${root}/.mana`;
  console.log(
    bold(`agentlock demo: ${WORKERS.length + 1} agent processes, ${FILES.length} files, `) +
      bold(`locks in ${dir}/locks\n`),
  );

  const victim = spawnAgent(root, { dir, unit: VICTIM, files: FILES, hold: VICTIM_FILE });
  await waitFor(
    `agent ${VICTIM} to lock ${VICTIM_FILE}`,
    (e) => e.unit === VICTIM && e.event === "ready",
  );

  for (const unit of WORKERS) spawnAgent(root, { dir, unit, files: FILES, workMs: WORK_MS });
  await Promise.all(
    WORKERS.map((unit) => waitFor(`agent ${unit}`, (e) => e.unit === unit && e.event === "ready")),
  );
  await new Promise((resolve) => setTimeout(resolve, KILL_AFTER_MS));

  victim.child.kill("SIGKILL");
  await victim.child.status; // reaped: its pid no longer exists
  killed = { unit: VICTIM, pid: victim.child.pid };
  say(
    `${red(bold("SIGKILL"))} ${unitName(VICTIM)} (pid ${victim.child.pid}); ` +
      `its lock on ${VICTIM_FILE} is left behind, stale`,
  );

  await Promise.all(
    WORKERS.map((unit) =>
      waitFor(`agent ${unit} to park`, (e) => e.unit === unit && e.event === "parked")
    ),
  );
  if (!takenOver) say(`nobody tried ${VICTIM_FILE} after the kill; the next agent to try takes it`);

  console.log(`\n${bold(`$ agentlock list --dir ${dir}`)}`);
  const list = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      `--allow-read=${root}`,
      `--allow-write=${dir}`,
      "--allow-run",
      "--allow-sys=hostname",
      CLI,
      "list",
      "--dir",
      dir,
    ],
    stdout: "inherit",
    stderr: "inherit",
    env: color ? {} : { NO_COLOR: "1" },
  }).output();
  if (!list.success) throw new Error(`agentlock list failed with status ${list.code}`);
  console.log();
}

const root = await Deno.makeTempDir({ prefix: "agentlock-demo-" });
let status = 0;
const interrupt = () => {
  status = 130;
  stopAll().finally(() => {
    Deno.removeSync(root, { recursive: true });
    Deno.exit(status);
  });
};
Deno.addSignalListener("SIGINT", interrupt);
try {
  await runDemo(root);
} catch (error) {
  console.error(red(`demo failed: ${error instanceof Error ? error.message : error}`));
  status = 1;
} finally {
  await stopAll();
  Deno.removeSignalListener("SIGINT", interrupt);
  await Deno.remove(root, { recursive: true });
}
const seconds = ((Date.now() - started) / 1000).toFixed(1);
console.log(
  status === 0
    ? `All ${agents.length} agents stopped; removed ${root}. Done in ${seconds} s.`
    : `Stopped all agents and removed ${root} after ${seconds} s.`,
);
Deno.exitCode = status;
