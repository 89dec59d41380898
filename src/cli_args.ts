/**
 * Command line parsing for the CLI: the commands, their options, their help texts, and the
 * checks that turn bad input into a {@linkcode UsageError} before anything is read or written.
 *
 * @module
 */

import { isValidPid } from "./format.ts";

/** Bad input on the command line: the CLI prints the message and exits with status 2. */
export class UsageError extends Error {
  /**
   * Creates a usage error.
   *
   * @param message What is wrong and what to type instead.
   */
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** The commands. */
export type Command = "list" | "check" | "acquire" | "release" | "prune" | "clear" | "help";

/** The parsed command line. */
export interface Parsed {
  /** The command, or `undefined` when only `--help` or `--version` was given. */
  command?: Command;
  /** The file argument of `check`, `acquire` and `release`. */
  file?: string;
  /** `--dir`. */
  dir?: string;
  /** `--unit`. */
  unit?: string;
  /** `--pid`, checked to be a valid pid. */
  pid?: number;
  /** `--json`. */
  json: boolean;
  /** `--help` or `-h`. */
  help: boolean;
  /** `--version` or `-V`. */
  version: boolean;
  /** `--force`. */
  force: boolean;
  /** The command named by `help <command>`. */
  helpTopic?: Command;
}

const VALUE_FLAGS = ["dir", "unit", "pid"] as const;
const BOOLEAN_FLAGS = ["json", "help", "version", "force"] as const;
type Flag = typeof VALUE_FLAGS[number] | typeof BOOLEAN_FLAGS[number];
const SHORT_FLAGS: Record<string, Flag> = { "-h": "help", "-V": "version" };
const COMMON_FLAGS: Flag[] = ["dir", "json", "help", "version"];

interface CommandSpec {
  flags: Flag[];
  /** Smallest and largest number of positional arguments after the command name. */
  args: [number, number];
  help: string;
}

const PERMS = "--allow-read --allow-write=<mana_dir> --allow-run --allow-sys=hostname";

/** How the CLI is started, shown in the help. */
const RUN =
  "deno run --allow-read --allow-write=.mana --allow-run --allow-sys=hostname jsr:@agentlock/core/cli";

const COMMON_HELP = `Options:
  --dir <mana_dir>  The mana directory (default: the nearest .mana walking up from the
                    current directory, else ./.mana)
  --json            Print JSON instead of text
  -h, --help        Show this help`;

const SPECS: Record<Command, CommandSpec> = {
  list: {
    flags: [],
    args: [0, 0],
    help: `Usage: agentlock list [--dir <mana_dir>] [--json]

Shows the live locks, newest first: unit, pid, host where known, age, file path. Stale and
corrupt lock files found on the way are removed, as every reader of the lock directory does.

--json prints an array of objects with the keys of the lock file (unit_id, pid, file_path,
locked_at, and host, boot_id, start_time, token where present) plus lock_path.

${COMMON_HELP}

Permissions: ${PERMS}
Exit status: 0; 3 on a permission or I/O error.`,
  },
  check: {
    flags: [],
    args: [1, 1],
    help: `Usage: agentlock check <file> [--dir <mana_dir>] [--json]

Prints "free" and exits 0 when <file> is not locked; prints the holder and exits 1 when it is.
The path is hashed exactly as given: ./a.ts and a.ts are different locks.

--json prints {"file_path", "locked": false} or {"file_path", "locked": true, "holder": {...}}.

${COMMON_HELP}

Permissions: ${PERMS}
Exit status: 0 free; 1 locked; 2 usage error; 3 permission or I/O error.`,
  },
  acquire: {
    flags: ["unit", "pid"],
    args: [1, 1],
    help: `Usage: agentlock acquire <file> --unit <id> --pid <pid> [--dir <mana_dir>] [--json]

Takes the lock on <file> for unit <id>, held by process <pid>. The lock lives as long as that
process: once it is gone, anyone may take the lock over. --pid is required because the CLI
itself exits at once; pass the process that does the work and will release the lock:
  in a shell script     --pid $$
  from a Node program   --pid \${process.pid}   (Python: os.getpid())
The pid must be a running process. Taking a lock the same unit and pid already hold succeeds.

--json prints {"file_path", "acquired": true, "lock": {...}} or
{"file_path", "acquired": false, "holder": {...} | null}.

Options:
  --unit <id>       The unit (task) taking the lock, e.g. 1.1
  --pid <pid>       The process that holds the lock
${COMMON_HELP.slice("Options:\n".length)}

Permissions: ${PERMS}
(Deno lets only --allow-all read /proc; under it the lock also records the boot id and the
holder's start time, which tell a reused pid from the holder)
Exit status: 0 acquired; 1 held by another owner; 2 usage error; 3 permission or I/O error.`,
  },
  release: {
    flags: ["unit", "pid"],
    args: [0, 1],
    help: `Usage: agentlock release <file> --unit <id> [--pid <pid>] [--dir <mana_dir>] [--json]
       agentlock release --unit <id> [--pid <pid>] [--dir <mana_dir>] [--json]

With <file>: releases the lock on <file> if unit <id> (and, with --pid, that process) holds it.
Without <file>: releases every lock of unit <id> (with --pid, only those held by that process).
Prints how many locks were released. A lock held by another owner is never removed.

--json prints {"released": <count>}, plus "holder": {...} when <file> is held by another owner.

Options:
  --unit <id>       The unit whose locks to release
  --pid <pid>       Only locks held by this process
${COMMON_HELP.slice("Options:\n".length)}

Permissions: ${PERMS}
Exit status: 0 done (also when nothing was locked); 1 <file> is held by another owner;
2 usage error; 3 permission or I/O error.`,
  },
  prune: {
    flags: [],
    args: [0, 0],
    help: `Usage: agentlock prune [--dir <mana_dir>] [--json]

Removes stale locks (their process is gone), corrupt lock files, and temporary files of writers
that died, and prints what it removed and why. Live locks are kept. \`deno task cleanup\` runs this.

--json prints {"removed": [{"lock_path", "reason", "file_path"?}],
"skipped": [{"lock_path", "reason"}], "live": [{...}]}.

${COMMON_HELP}

Permissions: ${PERMS}
Exit status: 0; 3 on a permission or I/O error.`,
  },
  clear: {
    flags: ["force"],
    args: [0, 0],
    help: `Usage: agentlock clear --force [--dir <mana_dir>] [--json]

Removes every lock, live or not. Running agents are not told and lose their locks, so use it
only when no agent runs. Refuses without --force.

--json prints {"cleared": <count of live locks removed>}.

Options:
  --force           Really remove live locks
${COMMON_HELP.slice("Options:\n".length)}

Permissions: ${PERMS}
Exit status: 0; 2 without --force; 3 on a permission or I/O error.`,
  },
  help: {
    flags: [],
    args: [0, 1],
    help: "Usage: agentlock help [command]",
  },
};

/** The commands in the order the help lists them. */
export const COMMANDS = Object.keys(SPECS) as Command[];

/** The main help text. */
export const MAIN_HELP =
  `agentlock: file locks for AI coding agents, shared with mana (<mana_dir>/locks/*.lock)

Usage: agentlock <command> [options]

Commands:
  list                                   Show the live locks, newest first
  check <file>                           Exit 0 if <file> is free, 1 if locked
  acquire <file> --unit <id> --pid <pid> Take a lock for a process; exit 1 if held
  release <file> --unit <id> [--pid <pid>]
                                         Release one lock
  release --unit <id> [--pid <pid>]      Release every lock of a unit
  prune                                  Remove stale and corrupt locks, saying why
  clear --force                          Remove every lock, live or not
  help [command]                         Show the help of a command

${COMMON_HELP}
  -V, --version     Print the version

Exit status: 0 success or free; 1 held or locked; 2 usage error; 3 permission or I/O error.
Errors are one line on stderr. Colour only when stdout is a terminal and NO_COLOR is unset.

Run it with:
  ${RUN} <command>
  deno task locks <command>     (in the agentlock repository; writes only to ./.mana)`;

/** The help text of a command. */
export function commandHelp(command: Command): string {
  return SPECS[command].help;
}

function isCommand(name: string): name is Command {
  return Object.hasOwn(SPECS, name);
}

/** Parses and checks the arguments. Throws {@linkcode UsageError} on any bad input. */
export function parseArgs(args: string[]): Parsed {
  const values: Partial<Record<Flag, string>> = {};
  const flags = new Set<Flag>();
  const positional: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === "--") {
      positional.push(...args.slice(i + 1));
      break;
    }
    if (!arg.startsWith("-") || arg === "-") {
      positional.push(arg);
      continue;
    }
    let name: string;
    let inline: string | undefined;
    if (arg.startsWith("--")) {
      const eq = arg.indexOf("=");
      name = eq === -1 ? arg.slice(2) : arg.slice(2, eq);
      inline = eq === -1 ? undefined : arg.slice(eq + 1);
    } else {
      name = SHORT_FLAGS[arg] ?? "";
      if (!name) throw new UsageError(`unknown option ${arg}; see agentlock --help`);
    }
    const flag = name as Flag;
    if ((VALUE_FLAGS as readonly string[]).includes(name)) {
      let value = inline;
      if (value === undefined) {
        const next = args[i + 1];
        if (next === undefined || (next.startsWith("-") && next !== "-")) {
          throw new UsageError(`--${name} needs a value, e.g. ${example(name)}`);
        }
        value = next;
        i++;
      }
      if (flags.has(flag)) throw new UsageError(`--${name} is given twice; give it once`);
      values[flag] = value;
    } else if ((BOOLEAN_FLAGS as readonly string[]).includes(name)) {
      if (inline !== undefined) throw new UsageError(`--${name} takes no value; write --${name}`);
    } else {
      throw new UsageError(`unknown option ${arg.split("=")[0]}; see agentlock --help`);
    }
    flags.add(flag);
  }

  const parsed: Parsed = {
    json: flags.has("json"),
    help: flags.has("help"),
    version: flags.has("version"),
    force: flags.has("force"),
  };
  const [name, ...rest] = positional;
  if (name === undefined) {
    if (parsed.help || parsed.version) {
      const extra = [...flags].find((flag) => !COMMON_FLAGS.includes(flag));
      if (extra) throw new UsageError(`--${extra} needs a command; see agentlock --help`);
      return parsed;
    }
    throw new UsageError(
      `missing command; use one of ${COMMANDS.join(", ")} (see agentlock --help)`,
    );
  }
  if (!isCommand(name)) {
    throw new UsageError(
      `unknown command "${name}"; use one of ${COMMANDS.join(", ")} (see agentlock --help)`,
    );
  }
  parsed.command = name;
  const spec = SPECS[name];
  for (const flag of flags) {
    if (!COMMON_FLAGS.includes(flag) && !spec.flags.includes(flag)) {
      throw new UsageError(`${name} does not take --${flag}; see agentlock ${name} --help`);
    }
  }
  if (name === "help") {
    if (rest.length > 1) throw new UsageError("help takes at most one command");
    if (rest.length === 1) {
      if (!isCommand(rest[0])) {
        throw new UsageError(`unknown command "${rest[0]}"; use one of ${COMMANDS.join(", ")}`);
      }
      parsed.helpTopic = rest[0];
    }
    return parsed;
  }
  if (parsed.help || parsed.version) return parsed; // help comes before checking the rest

  const [min, max] = spec.args;
  if (rest.length < min) {
    throw new UsageError(`${name} needs a <file> argument; see agentlock ${name} --help`);
  }
  if (rest.length > max) {
    const extra = rest.slice(max).map((arg) => JSON.stringify(arg)).join(" ");
    throw new UsageError(
      `${name} takes ${max === 0 ? "no arguments" : "one <file>"}, got also ${extra}; ` +
        `see agentlock ${name} --help`,
    );
  }
  if (rest.length === 1) parsed.file = checkFile(rest[0]);
  if (values.dir !== undefined) {
    if (values.dir === "") throw new UsageError("--dir is empty; pass the mana directory");
    parsed.dir = values.dir;
  }
  if (values.unit !== undefined) {
    if (values.unit === "") throw new UsageError("--unit is empty; pass a unit id such as 1.1");
    parsed.unit = values.unit;
  }
  if (values.pid !== undefined) parsed.pid = checkPid(values.pid);
  if ((name === "acquire" || name === "release") && parsed.unit === undefined) {
    throw new UsageError(`${name} needs --unit <id>, e.g. --unit 1.1`);
  }
  if (name === "acquire" && parsed.pid === undefined) {
    throw new UsageError(
      "acquire needs --pid <pid>: the process that holds the lock (in a shell script: --pid $$); " +
        "see agentlock acquire --help",
    );
  }
  if (name === "clear" && !parsed.force) {
    throw new UsageError(
      "clear removes every lock, also those of running agents; run it with --force if none runs",
    );
  }
  return parsed;
}

function checkFile(file: string): string {
  if (file === "") throw new UsageError("<file> is empty; pass the path to lock");
  if (!file.isWellFormed()) throw new UsageError("<file> is not valid Unicode");
  return file;
}

function checkPid(text: string): number {
  const pid = /^[0-9]+$/.test(text) ? Number(text) : NaN;
  if (!isValidPid(pid)) {
    throw new UsageError(
      `--pid ${JSON.stringify(text)} is not a process id; pass a number from 1 to 2147483647`,
    );
  }
  return pid;
}

function example(name: string): string {
  return name === "dir" ? "--dir .mana" : name === "unit" ? "--unit 1.1" : "--pid $$";
}
