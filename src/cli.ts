/**
 * The `agentlock` command line: see, take, release and clean locks from the shell.
 *
 * ```sh
 * # Run from JSR (write access only to the mana directory):
 * deno run --allow-read --allow-write=.mana --allow-run --allow-sys=hostname \
 *   jsr:@agentlock/core/cli list
 *
 * agentlock list                                  # live locks, newest first
 * agentlock check src/main.ts                     # exit 0 "free", exit 1 and the holder
 * agentlock acquire src/main.ts --unit 1.1 --pid $$
 * agentlock release src/main.ts --unit 1.1        # or: release --unit 1.1 (all its locks)
 * agentlock prune                                 # remove stale and corrupt locks, saying why
 * agentlock clear --force                         # remove every lock, live or not
 * ```
 *
 * Every command takes `--dir <mana_dir>` (default: the nearest `.mana` walking up from the
 * current directory, else `./.mana`), `--json` and `--help`. Exit status: 0 success, 1 held or
 * locked, 2 usage error, 3 permission or I/O error; errors are one line on stderr.
 *
 * The pid of `acquire` is required: the CLI exits at once, so its own pid (or that of `deno task`)
 * would leave a lock that is stale the moment it is written. Pass the process that does the work,
 * e.g. `--pid $$` in a shell script.
 *
 * @example Calling the CLI in-process
 * ```ts
 * import { main } from "@agentlock/core/cli";
 *
 * const status = await main(["check", "src/main.ts", "--dir", ".mana"]);
 * console.log(status === 0 ? "free" : "locked or failed");
 * ```
 *
 * @module
 */

import denoJson from "../deno.json" with { type: "json" };
import { commandHelp, MAIN_HELP, parseArgs, type Parsed, UsageError } from "./cli_args.ts";
import {
  describeHolder,
  fullRecord,
  lockJson,
  lockTable,
  makeStyle,
  newestFirst,
  oneLine,
  type Style,
} from "./cli_format.ts";
import { readEntry } from "./entry.ts";
import { fsError, LockError, LockPermissionError } from "./errors.ts";
import type { LockInfo, LockRecord } from "./format.ts";
import { isProcessAlive } from "./liveness.ts";
import { joinPath, lockFilenameSync } from "./paths.ts";
import {
  acquire,
  checkLock,
  clearAll,
  listLocks,
  pruneLocks,
  release,
  releaseAllForUnit,
} from "./store.ts";

/** The version of this package. */
export const VERSION: string = denoJson.version;

/** Exit statuses of the CLI. */
export const ExitCode = {
  /** Success; for `check`, the file is free. */
  OK: 0,
  /** A normal answer, not an error: the file is locked or held by another owner. */
  HELD: 1,
  /** Bad command line: unknown command or option, missing argument, `--dir` that is a file. */
  USAGE: 2,
  /** A permission is missing, or reading or writing the lock directory failed. */
  FAILURE: 3,
} as const;

/** Where the CLI writes; tests and embedders can capture it. */
export interface CliOutput {
  /** Writes one block of normal output (a line break is added). */
  stdout(text: string): void;
  /** Writes one line of error output (a line break is added). */
  stderr(text: string): void;
  /** Whether to colour the output; by default only on a terminal with `NO_COLOR` unset. */
  color?: boolean;
}

const consoleOutput: CliOutput = {
  stdout: (text) => console.log(text),
  stderr: (text) => console.error(text),
};

/**
 * Runs the CLI with the given arguments and returns its exit status. It never throws: errors are
 * printed as one line on stderr.
 *
 * Permissions: `--allow-read`, `--allow-write` for the mana directory, `--allow-run` (to probe
 * the pids of lock holders) and `--allow-sys=hostname` (macOS, to record the host).
 *
 * @param args The arguments, e.g. `Deno.args` or `["list", "--json"]`.
 * @param output Where to write; by default stdout and stderr.
 * @returns The exit status: see {@linkcode ExitCode}.
 *
 * @example
 * ```ts
 * import { main } from "@agentlock/core/cli";
 *
 * Deno.exitCode = await main(["list", "--dir", ".mana"]);
 * ```
 */
export async function main(args: string[], output: CliOutput = consoleOutput): Promise<number> {
  const color = output.color ?? (Deno.stdout.isTerminal() && !Deno.noColor);
  const errorStyle = makeStyle(output.color ?? (Deno.stderr.isTerminal() && !Deno.noColor));
  try {
    return await run(parseArgs(args), output, makeStyle(color));
  } catch (error) {
    const [status, message] = describeFailure(error);
    output.stderr(`${errorStyle.error("agentlock:")} ${oneLine(message)}`);
    return status;
  }
}

function describeFailure(error: unknown): [number, string] {
  if (error instanceof UsageError) return [ExitCode.USAGE, error.message];
  if (error instanceof LockError) return [ExitCode.FAILURE, error.message];
  if (error instanceof Deno.errors.NotCapable) {
    return [ExitCode.FAILURE, `${error.message}; see agentlock <command> --help for the flags`];
  }
  if (error instanceof Error) return [ExitCode.FAILURE, `unexpected error: ${error.message}`];
  return [ExitCode.FAILURE, `unexpected error: ${String(error)}`];
}

/** What a command needs: the parsed arguments, the resolved mana directory, and output. */
interface Context {
  parsed: Parsed;
  manaDir: string;
  out: CliOutput;
  style: Style;
  now: number;
}

async function run(parsed: Parsed, out: CliOutput, style: Style): Promise<number> {
  if (parsed.version) {
    out.stdout(parsed.json ? json({ version: VERSION }) : `agentlock ${VERSION}`);
    return ExitCode.OK;
  }
  if (parsed.command === "help" || parsed.help || parsed.command === undefined) {
    const topic = parsed.command === "help" ? parsed.helpTopic : parsed.command;
    out.stdout(topic && topic !== "help" ? commandHelp(topic) : MAIN_HELP);
    return ExitCode.OK;
  }
  const manaDir = resolveManaDir(parsed.dir);
  requireAccess(manaDir);
  const context: Context = { parsed, manaDir, out, style, now: Date.now() / 1000 };
  switch (parsed.command) {
    case "list":
      return await listCommand(context);
    case "check":
      return await checkCommand(context, parsed.file!);
    case "acquire":
      return await acquireCommand(context, parsed.file!, parsed.unit!, parsed.pid!);
    case "release":
      return parsed.file === undefined
        ? await releaseUnitCommand(context, parsed.unit!, parsed.pid)
        : await releaseFileCommand(context, parsed.file, parsed.unit!, parsed.pid);
    case "prune":
      return await pruneCommand(context);
    case "clear":
      return await clearCommand(context);
  }
}

// ---------------------------------------------------------------------------------------------
// Commands

async function listCommand({ manaDir, parsed, out, style, now }: Context): Promise<number> {
  const live = hasLockDir(manaDir) ? await listLocks(manaDir) : [];
  const rows = newestFirst(
    live.map(({ info, lockPath }) => ({ record: fullRecord(info, lockPath), lockPath })),
  );
  if (parsed.json) {
    out.stdout(JSON.stringify(rows.map((row) => lockJson(row.record, row.lockPath)), null, 2));
  } else if (rows.length === 0) {
    out.stdout(`No locks held in ${manaDir}.`);
  } else {
    out.stdout(lockTable(rows.map((row) => row.record), now, style));
  }
  return ExitCode.OK;
}

async function checkCommand(context: Context, file: string): Promise<number> {
  const { manaDir, parsed, out, style, now } = context;
  const holder = hasLockDir(manaDir) ? await checkLock(manaDir, file) : null;
  const lockPath = lockPathOf(manaDir, file);
  if (!holder) {
    // checkLock leaves an unreadable lock file younger than a few seconds alone (it may be being
    // written) and reports no holder, but acquire would not take it: that is not "free".
    if (hasLockDir(manaDir) && readEntry(lockPath).kind === "corrupt") {
      out.stdout(
        parsed.json
          ? json({ file_path: file, locked: true, holder: null })
          : `${style.held("locked")}: the lock file is being written; check again in a few seconds`,
      );
      return ExitCode.HELD;
    }
    out.stdout(parsed.json ? json({ file_path: file, locked: false }) : style.ok("free"));
    return ExitCode.OK;
  }
  const record = fullRecord(holder, lockPath);
  out.stdout(
    parsed.json
      ? json({ file_path: file, locked: true, holder: lockJson(record, lockPath) })
      : `${style.held("locked")} by ${describeHolder(record, now, style)}`,
  );
  return ExitCode.HELD;
}

async function acquireCommand(
  context: Context,
  file: string,
  unit: string,
  pid: number,
): Promise<number> {
  const { manaDir, parsed, out, style, now } = context;
  if (!isProcessAlive(pid)) {
    throw new UsageError(
      `pid ${pid} is not running; pass the live process that will hold the lock ` +
        `(in a shell script: --pid $$)`,
    );
  }
  const lockPath = lockPathOf(manaDir, file);
  if (await acquire(manaDir, unit, pid, file)) {
    const info: LockInfo = { unitId: unit, pid, filePath: file, lockedAt: Math.floor(now) };
    const record = fullRecord(info, lockPath);
    out.stdout(
      parsed.json
        ? json({ file_path: file, acquired: true, lock: lockJson(record, lockPath) })
        : `${style.ok("acquired")} ${file} for unit ${style.unit(unit)} (pid ${pid})`,
    );
    return ExitCode.OK;
  }
  const holder = await holderOf(manaDir, file);
  if (parsed.json) {
    out.stdout(json({
      file_path: file,
      acquired: false,
      holder: holder ? lockJson(holder, lockPath) : null,
    }));
  } else {
    out.stdout(
      holder
        ? `${style.held("held")} by ${describeHolder(holder, now, style)}`
        : `${style.held("held")}: the lock file is being written or was just released; try again`,
    );
  }
  return ExitCode.HELD;
}

async function releaseFileCommand(
  context: Context,
  file: string,
  unit: string,
  pid: number | undefined,
): Promise<number> {
  const { manaDir, parsed, out, style, now } = context;
  if (hasLockDir(manaDir)) {
    let ownerPid = pid;
    if (ownerPid === undefined) {
      const holder = await checkLock(manaDir, file);
      if (holder?.unitId === unit) ownerPid = holder.pid;
    }
    if (ownerPid !== undefined && await release(manaDir, unit, ownerPid, file)) {
      out.stdout(
        parsed.json ? json({ file_path: file, released: 1 }) : `released 1 lock (${file})`,
      );
      return ExitCode.OK;
    }
  }
  const holder = await holderOf(manaDir, file);
  if (!holder) {
    out.stdout(
      parsed.json
        ? json({ file_path: file, released: 0 })
        : `released 0 locks: ${file} is not locked`,
    );
    return ExitCode.OK;
  }
  const lockPath = lockPathOf(manaDir, file);
  out.stdout(
    parsed.json
      ? json({ file_path: file, released: 0, holder: lockJson(holder, lockPath) })
      : `released 0 locks: ${file} is ${style.held("held")} by ${
        describeHolder(holder, now, style)
      }`,
  );
  return ExitCode.HELD;
}

async function releaseUnitCommand(
  { manaDir, parsed, out, style }: Context,
  unit: string,
  pid: number | undefined,
): Promise<number> {
  let released = 0;
  if (hasLockDir(manaDir)) {
    if (pid === undefined) {
      released = await releaseAllForUnit(manaDir, unit);
    } else {
      for (const { info } of await listLocks(manaDir)) {
        if (info.unitId !== unit || info.pid !== pid) continue;
        if (await release(manaDir, unit, pid, info.filePath)) released++;
      }
    }
  }
  const owner = `unit ${style.unit(unit)}${pid === undefined ? "" : ` (pid ${pid})`}`;
  out.stdout(parsed.json ? json({ released }) : `released ${locks(released)} of ${owner}`);
  return ExitCode.OK;
}

async function pruneCommand({ manaDir, parsed, out, style }: Context): Promise<number> {
  if (!hasLockDir(manaDir)) {
    out.stdout(
      parsed.json
        ? json({ removed: [], skipped: [], live: [] })
        : `Nothing to prune: ${manaDir} has no locks.`,
    );
    return ExitCode.OK;
  }
  const report = await pruneLocks(manaDir);
  const removed = report.removed.map(({ lockPath, reason, filePath }) => {
    return filePath === undefined
      ? { lock_path: lockPath, reason }
      : { lock_path: lockPath, reason, file_path: filePath };
  });
  if (parsed.json) {
    const live = newestFirst(
      report.live.map(({ info, lockPath }) => ({ record: fullRecord(info, lockPath), lockPath })),
    );
    out.stdout(json({
      removed,
      skipped: report.skipped.map(({ lockPath, reason }) => ({ lock_path: lockPath, reason })),
      live: live.map((row) => lockJson(row.record, row.lockPath)),
    }));
    return ExitCode.OK;
  }
  const lines: string[] = [];
  for (const entry of removed) {
    lines.push(`${style.ok("removed")} ${entry.file_path ?? entry.lock_path}: ${entry.reason}`);
  }
  for (const { lockPath, reason } of report.skipped) {
    lines.push(`${style.held("skipped")} ${lockPath}: ${reason}`);
  }
  const live = report.live.length;
  const kept = `kept ${live} live lock${live === 1 ? "" : "s"}`;
  lines.push(
    removed.length === 0
      ? `Nothing to prune; ${kept}.`
      : `Pruned ${removed.length} ${removed.length === 1 ? "entry" : "entries"}; ${kept}.`,
  );
  out.stdout(lines.join("\n"));
  return ExitCode.OK;
}

async function clearCommand({ manaDir, parsed, out }: Context): Promise<number> {
  const cleared = hasLockDir(manaDir) ? await clearAll(manaDir) : 0;
  out.stdout(parsed.json ? json({ cleared }) : `Cleared ${locks(cleared)} in ${manaDir}.`);
  return ExitCode.OK;
}

// ---------------------------------------------------------------------------------------------
// Helpers

function json(value: unknown): string {
  return JSON.stringify(value, null, 2);
}

function locks(count: number): string {
  return `${count} lock${count === 1 ? "" : "s"}`;
}

function lockPathOf(manaDir: string, file: string): string {
  return joinPath(joinPath(manaDir, "locks"), lockFilenameSync(file));
}

/** The live holder of `file` with every key of its lock file, or `null`. */
async function holderOf(manaDir: string, file: string): Promise<LockRecord | null> {
  if (!hasLockDir(manaDir)) return null;
  const info = await checkLock(manaDir, file);
  return info && fullRecord(info, lockPathOf(manaDir, file));
}

/**
 * Whether `<manaDir>/locks` exists. Commands other than `acquire` stop early when it does not,
 * so that looking never creates directories.
 */
function hasLockDir(manaDir: string): boolean {
  const dir = joinPath(manaDir, "locks");
  try {
    Deno.statSync(dir);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw fsError("inspect", dir, error);
  }
}

function granted(name: "read" | "write", path: string): boolean {
  return Deno.permissions.querySync({ name, path }).state === "granted";
}

/**
 * The mana directory: `--dir` if given (it must not be a file), else the nearest `.mana`
 * directory walking up from the current directory, else `./.mana`. Directories the process may
 * not read are skipped, so that no permission prompt appears.
 */
function resolveManaDir(dir: string | undefined): string {
  if (dir !== undefined) {
    if (!granted("read", dir)) {
      throw new LockPermissionError(
        `Needs read access to ${dir}; run with --allow-read=${dir} --allow-write=${dir}`,
      );
    }
    let info: Deno.FileInfo;
    try {
      info = Deno.statSync(dir);
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return dir;
      throw fsError("inspect", dir, error);
    }
    if (!info.isDirectory) {
      throw new UsageError(
        `--dir ${dir} is not a directory; pass the mana directory, e.g. --dir .mana`,
      );
    }
    return dir;
  }
  if (!granted("read", ".")) return ".mana";
  const cwd = Deno.cwd();
  for (let current = cwd;;) {
    const candidate = joinPath(current, ".mana");
    if (granted("read", candidate) && isDirectory(candidate)) {
      return current === cwd ? ".mana" : candidate;
    }
    const parent = current.replace(/\/[^/]*$/, "") || "/";
    if (parent === current) return ".mana";
    current = parent;
  }
}

function isDirectory(path: string): boolean {
  try {
    return Deno.statSync(path).isDirectory;
  } catch {
    return false;
  }
}

/**
 * Fails early, without a prompt, when a permission the commands rely on is missing: read and write
 * access to the mana directory, `--allow-run` to probe whether holders are alive, and
 * `--allow-sys=hostname` to tell this host's locks from other hosts' (without it every lock that
 * names a host would look foreign, so none would ever be found stale).
 */
function requireAccess(manaDir: string): void {
  const missing: [flag: string, purpose: string][] = [];
  if (!granted("read", manaDir)) missing.push([`--allow-read=${manaDir}`, "to read the locks"]);
  if (!granted("write", manaDir)) {
    missing.push([`--allow-write=${manaDir}`, "to take and remove locks"]);
  }
  if (Deno.permissions.querySync({ name: "run" }).state !== "granted") {
    missing.push(["--allow-run", "to probe whether lock holders are alive"]);
  }
  if (Deno.permissions.querySync({ name: "sys", kind: "hostname" }).state !== "granted") {
    missing.push(["--allow-sys=hostname", "to tell this host's locks from other hosts'"]);
  }
  if (missing.length > 0) {
    const needs = missing.map(([flag, purpose]) => `${flag} ${purpose}`).join(", ");
    const flags = missing.map(([flag]) => flag).join(" ");
    throw new LockPermissionError(`Needs ${needs}; run with ${flags}`);
  }
}

if (import.meta.main) {
  Deno.exitCode = await main(Deno.args);
}
