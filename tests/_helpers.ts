/** Shared test helpers: temporary mana directories and lock files written by hand. */

import { encodeLock, type LockRecord } from "../src/format.ts";
import { lockDirSync, lockFilenameSync } from "../mod.ts";

const roots: string[] = [];
globalThis.addEventListener("unload", () => {
  for (const root of roots) Deno.removeSync(root, { recursive: true });
});

/** A fresh `.mana` directory inside a new temporary directory, removed when the tests end. */
export function tempManaDir(): string {
  const root = Deno.makeTempDirSync({ prefix: "agentlock-test-" });
  roots.push(root);
  const manaDir = `${root}/.mana`;
  Deno.mkdirSync(manaDir);
  return manaDir;
}

/** The lock file path of `filePath`, creating the lock directory. */
export function lockPathOf(manaDir: string, filePath: string): string {
  return `${lockDirSync(manaDir)}/${lockFilenameSync(filePath)}`;
}

/** Writes a lock file by hand, as another process (or mana's Rust code) would. */
export function plantLock(manaDir: string, record: LockRecord): string {
  const path = lockPathOf(manaDir, record.filePath);
  Deno.writeFileSync(path, encodeLock(record));
  return path;
}

/** A pid that belonged to a process that has exited: spawn a short child and wait for it. */
export async function deadPid(): Promise<number> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["eval", "0"],
    stdout: "null",
    stderr: "null",
  }).spawn();
  await child.status;
  return child.pid;
}

/** Whether a path exists, without following a symlink. */
export function exists(path: string): boolean {
  try {
    Deno.lstatSync(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

/** Sets a file's modification time `seconds` into the past. */
export function age(path: string, seconds: number): void {
  const then = new Date(Date.now() - seconds * 1000);
  Deno.utimeSync(path, then, then);
}

/** The deno executable and the module root, for child processes. */
export const DENO = Deno.execPath();
export const ROOT = new URL("..", import.meta.url).pathname;

/** What a child `deno run` printed, and how it ended. */
export interface ScriptResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs TypeScript source in a child `deno run` with exactly `flags` (plus read access to the
 * module and the script), as a program with fewer permissions than the tests would be.
 */
export async function runScript(source: string, flags: string[]): Promise<ScriptResult> {
  const dir = Deno.makeTempDirSync({ prefix: "agentlock-script-" });
  roots.push(dir);
  const script = `${dir}/script.ts`;
  Deno.writeTextFileSync(script, source);
  const readFlag = flags.find((flag) => flag.startsWith("--allow-read"));
  const read = readFlag === "--allow-read"
    ? []
    : [`${readFlag ?? "--allow-read="}${readFlag ? "," : ""}${ROOT},${dir}`];
  const args = ["run", "--no-prompt", ...flags.filter((f) => f !== readFlag), ...read, script];
  const out = await new Deno.Command(DENO, { args, stdout: "piped", stderr: "piped" }).output();
  const decoder = new TextDecoder();
  return { code: out.code, stdout: decoder.decode(out.stdout), stderr: decoder.decode(out.stderr) };
}
