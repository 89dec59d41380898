// `deno task demo` runs to the end, shows a takeover and a `list` table, and leaves nothing behind.

import assert from "node:assert/strict";
import { isProcessAlive } from "../mod.ts";
import { DENO, exists, ROOT } from "./_helpers.ts";

Deno.test("demo: agents compete, a killed holder's lock is taken over, nothing is left", async () => {
  const output = await new Deno.Command(DENO, {
    args: ["task", "-q", "demo"],
    cwd: ROOT,
    env: { NO_COLOR: "1" },
    stdin: "null",
  }).output();
  const stdout = new TextDecoder().decode(output.stdout);
  const stderr = new TextDecoder().decode(output.stderr);
  assert.equal(output.code, 0, `stdout:\n${stdout}\nstderr:\n${stderr}`);
  assert.equal(stderr, "");
  assert(!stdout.includes("\x1b["), "no colour with NO_COLOR");

  const victim = /agent 2\.1 \(pid (\d+)\) got src\/db\.ts/.exec(stdout);
  assert(victim, stdout);
  assert.match(stdout, new RegExp(`SIGKILL agent 2\\.1 \\(pid ${victim[1]}\\)`));
  assert.match(stdout, /agent 1\.\d took over src\/db\.ts: its holder pid \d+ is gone/);
  assert.match(stdout, /^UNIT +PID +HOST +AGE +FILE$/m);
  assert.match(stdout, /^1\.\d +\d+ +\S+ +(just now|\d+s ago) +src\/\w+\.ts$/m);

  const done = /All 4 agents stopped; removed (\S+)\. Done in [\d.]+ s\.$/m.exec(stdout);
  assert(done, stdout);
  assert(!exists(done[1]), "the temporary directory is removed");
  // Every agent process has exited and been reaped.
  // Pids appear as "pid N" in the events and in the PID column of the `list` table; an agent
  // that never waited may appear only in the table.
  const mentioned = [...stdout.matchAll(/pid (\d+)/g), ...stdout.matchAll(/^1\.\d +(\d+) /gm)];
  const pids = new Set(mentioned.map((match) => Number(match[1])));
  assert(pids.size >= 4, stdout);
  for (const pid of pids) assert(!isProcessAlive(pid), `pid ${pid} is gone`);
});
