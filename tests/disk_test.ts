// Full and read-only disks: a clear error, and nothing lost. Needs a small tmpfs, which only
// root can mount; elsewhere these tests are skipped with the reason.

import assert from "node:assert/strict";
import {
  acquire,
  checkLock,
  listLocks,
  LockDirectoryError,
  lockDirSync,
  lockFilenameSync,
  release,
} from "../mod.ts";

function sh(command: string, args: string[]): boolean {
  try {
    return new Deno.Command(command, { args, stdout: "null", stderr: "null" }).outputSync().success;
  } catch {
    return false;
  }
}

/** Mounts a tmpfs of `size` on a new directory; `null` where that is not allowed. */
function mountTmpfs(size: string): string | null {
  const dir = Deno.makeTempDirSync({ prefix: "agentlock-disk-" });
  if (sh("mount", ["-t", "tmpfs", "-o", `size=${size}`, "tmpfs", dir])) return dir;
  Deno.removeSync(dir);
  return null;
}

function unmount(dir: string): void {
  sh("umount", ["-l", dir]); // lazy: this process keeps the guard file open
  Deno.removeSync(dir, { recursive: true });
}

const probe = mountTmpfs("16k");
if (probe) unmount(probe);
const ignore = probe === null;
if (ignore) console.log("disk tests skipped: cannot mount a tmpfs here (needs root)");

Deno.test({
  name: "a full disk gives a clear error, leaves no temporary file and keeps the locks",
  ignore,
  async fn() {
    const root = mountTmpfs("64k")!;
    try {
      const manaDir = `${root}/.mana`;
      assert.ok(await acquire(manaDir, "1.1", Deno.pid, "kept.ts"));
      const dir = lockDirSync(manaDir);
      // Fill the disk to the last byte.
      const filler = await Deno.open(`${root}/filler`, { write: true, create: true });
      try {
        while (true) await filler.write(new Uint8Array(4096));
      } catch (error) {
        assert.match(String(error), /No space left|ENOSPC/);
      } finally {
        filler.close();
      }
      await assert.rejects(
        acquire(manaDir, "1.1", Deno.pid, "new.ts"),
        (error: Error) => error instanceof LockDirectoryError && /disk is full/.test(error.message),
      );
      const names = [...Deno.readDirSync(dir)].map((entry) => entry.name);
      const newName = lockFilenameSync("new.ts");
      assert.deepEqual(names.filter((name) => name.startsWith(`.${newName}`)), []);
      assert.equal((await checkLock(manaDir, "kept.ts"))?.unitId, "1.1");
      Deno.removeSync(`${root}/filler`);
      assert.ok(await acquire(manaDir, "1.1", Deno.pid, "new.ts"));
    } finally {
      unmount(root);
    }
  },
});

Deno.test({
  name: "a read-only disk gives a clear error; live locks can still be read",
  ignore,
  async fn() {
    const root = mountTmpfs("64k")!;
    try {
      const manaDir = `${root}/.mana`;
      assert.ok(await acquire(manaDir, "1.1", Deno.pid, "kept.ts"));
      assert.ok(sh("mount", ["-o", "remount,ro", root]));
      await assert.rejects(
        acquire(manaDir, "2.1", Deno.pid, "new.ts"),
        (error: Error) => error instanceof LockDirectoryError && /read-only/.test(error.message),
      );
      assert.equal((await checkLock(manaDir, "kept.ts"))?.unitId, "1.1");
      assert.equal((await listLocks(manaDir)).length, 1);
      await assert.rejects(release(manaDir, "1.1", Deno.pid, "kept.ts"), /read-only/);
      assert.ok(sh("mount", ["-o", "remount,rw", root]));
      assert.ok(await release(manaDir, "1.1", Deno.pid, "kept.ts"));
    } finally {
      unmount(root);
    }
  },
});
