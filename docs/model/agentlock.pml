/*
 * agentlock.pml: the lock protocol of docs/protocol.md, as src/ implements it, for the Spin
 * model checker. docs/model/verify.sh checks it; docs/protocol.md ("The model") explains it.
 *
 * One lock name is modelled. The file bearing it is abstracted to (owner pid, complete, old):
 *   absent          lk_present == 0
 *   being written   lk_complete == 0: only mana's Rust writer, created then killed before it
 *                   wrote, leaves one (an initial state below). Files of ours are published
 *                   complete; the assertion in read_entry shows that none is ever seen otherwise.
 *   complete        lk_complete == 1
 *   stale           complete and dead[lk_owner], or not complete and lk_old
 * Each worker also has its private temporary file (tmp_present, tmp_complete).
 *
 * Processes: NW workers that loop acquire -> hold -> release (when acquire returns false the
 * worker calls it again: it keeps trying), a cleaner that loops over checkLock and pruneLocks,
 * a killer that may crash any of them at any step, and a clock that ages a half-written file.
 * A crash stops the process forever; the kernel drops its flock on the guard; its files stay;
 * its pid is dead from then on. Pids are never reused in the model (a reused pid looks alive,
 * which can only delay a take-over, never cause one).
 *
 * Negative controls, for verify.sh only: -DBREAK_REJUDGE removes a stale-judged file under the
 * guard without reading and judging it again (mutual exclusion must fail); -DBREAK_GUARD_ON_CRASH
 * leaves the guard locked when its holder dies (progress must fail).
 *
 * Each atomic { } or d_step { } below is one indivisible step: one system call of the code,
 * together with the bookkeeping of the model (want, hold, the locals e_*). Each step is tagged
 *   @src <file> "<text of the line it stands for>"
 * and verify.sh fails if a tagged text no longer occurs in that file; it prints the line numbers.
 */

#ifndef NW
#define NW 3                    /* workers */
#endif
#ifndef MAXCRASH
#define MAXCRASH (NW + 1)       /* crashes in one run: by default every process may crash */
#endif

#define FREE     0              /* the guard is free */
#define PREV     (NW + 1)       /* owner of a lock left before the run: dead from the start */
#define CLEANER  (NW + 2)
#define NPID     (NW + 3)       /* pids 1..NW are the workers */

/* ---- the file system ---------------------------------------------------------------------- */
bit  lk_present;                /* a file bears the lock name */
byte lk_owner;                  /* the pid its content names */
bit  lk_complete;               /* its content parses */
bit  lk_old;                    /* its mtime is WRITE_GRACE_MS old or more */
bit  tmp_present[NPID];         /* the worker's private temporary file exists */
bit  tmp_complete[NPID];        /* ... and holds the complete record */
byte guard = FREE;              /* pid holding the flock on .agentlock.guard */

/* ---- processes ------------------------------------------------------------------------------ */
bit  dead[NPID];                /* kill(pid, 0) would fail with ESRCH */
bit  kill[NPID];                /* the killer crashes this process at its next step */
byte crashes;
bit  want[NPID];                /* a live worker inside acquire */
bit  hold[NPID];                /* a live worker from its successful link until its release */

/* ---- properties ----------------------------------------------------------------------------- */
#if NW == 3
#define HOLDERS  (hold[1] + hold[2] + hold[3])
#define ANYHOLD  (hold[1] || hold[2] || hold[3])
#define ANYWANT  (want[1] || want[2] || want[3])
#define NOLOST   ((!hold[1] || (lk_present && lk_owner == 1)) && \
                  (!hold[2] || (lk_present && lk_owner == 2)) && \
                  (!hold[3] || (lk_present && lk_owner == 3)))
#elif NW == 2
#define HOLDERS  (hold[1] + hold[2])
#define ANYHOLD  (hold[1] || hold[2])
#define ANYWANT  (want[1] || want[2])
#define NOLOST   ((!hold[1] || (lk_present && lk_owner == 1)) && \
                  (!hold[2] || (lk_present && lk_owner == 2)))
#else
#error "NW must be 2 or 3"
#endif

/* Mutual exclusion: never two live workers between link and release. */
ltl mutex    { [] (HOLDERS <= 1) }
/* No lost lock: a live holder's lock file stays in place, naming it, until it releases. */
ltl nolost   { [] NOLOST }
/* Progress: while some live worker tries, eventually someone holds the lock, or every worker
 * that was trying has crashed. Checked under weak fairness (pan -a -f). */
ltl progress { [] (ANYWANT -> <> (ANYHOLD || !ANYWANT)) }

/* ---- steps shared by the processes ---------------------------------------------------------- */

/* readEntry(path), first half: lstat. Gives "missing", or the age of whatever file is there. */
inline lstat_entry() {
  /* A scan takes the type from the directory listing and lstats only an unreadable file, for its
   * age, after the read; that only picks candidates: the re-read under the guard decides. */
  /* @src src/entry.ts "info = lstat(path);" */
  atomic { e_present = lk_present; e_old = lk_old && lk_present }
}

/* readEntry(path), second half: open + read, of whatever file bears the name by then (a file's
 * content never changes once it bears the name, so open and read are one step). */
inline read_content() {
  /* @src src/entry.ts "file = Deno.openSync(path, { read: true });" */
  /* @src src/entry.ts "length = file.readSync(buffer) ?? 0;" */
  if
  :: lk_present ->
     e_owner = lk_owner; e_complete = lk_complete;
     /* Shown, not assumed: a file of ours is complete whenever it bears the lock name. */
     assert(lk_complete || lk_owner == PREV)
  :: else ->                           /* ENOENT on open: "missing" */
     e_present = 0; e_old = 0
  fi
}

/* judge(entry), with the owner probe made after the read: a readable lock is stale iff its owner
 * is proven dead; an unreadable one iff it is old. */
inline judge() {
  if
  :: e_complete ->
     /* @src src/liveness.ts "if (!isProcessAlive(record.pid)) return \"dead\";" */
     stale = dead[e_owner]
  :: else ->
     /* @src src/entry.ts "if (entry.ageMs < WRITE_GRACE_MS) {" */
     stale = e_old
  fi
}

inline forget_entry() {
  e_present = 0; e_owner = 0; e_complete = 0; e_old = 0; stale = 0
}

/* withGuard: tryLockSync, retried after a pause while another process holds it. */
inline guard_take() {
  /* @src src/guard.ts "locked = guard.file.tryLockSync(true);" */
  atomic { guard == FREE -> guard = me }
}

inline guard_drop() {
  /* @src src/guard.ts "guard.file.unlockSync();" */
  atomic { assert(guard == me); guard = FREE }
}

/* removeIfStale(lockPath), under the guard: read and judge again; unlink only if still stale. */
inline remove_if_stale() {
  /* @src src/store.ts "function removeIfStale(lockPath: string, removed?: RemovedLock[])" */
  lstat_entry();
  atomic { if :: e_present -> read_content() :: else fi };
  /* the owner probe, then unlink(2) if stale: */
  /* @src src/store.ts "const verdict = judge(entry);" */
  /* @src src/store.ts "if (remove(lockPath)) {" */
  /* @src src/store.ts "Deno.removeSync(lockPath);" */
  atomic {
    if
    :: e_present ->
       judge();
#ifdef BREAK_REJUDGE
       stale = 1;                      /* negative control: remove without judging again */
#endif
       if
       :: stale && lk_present ->
          /* The file unlinked is the file judged: its owner is dead, or it is a half-written
           * file whose writer died; never a live holder's lock. */
          assert(guard == me);
          assert(lk_owner == e_owner && !hold[lk_owner] && (!lk_complete || dead[lk_owner]));
          lk_present = 0; lk_owner = 0; lk_complete = 0; lk_old = 0
       :: else                         /* held again, or already gone (NotFound) */
       fi
    :: else                            /* missing */
    fi;
    forget_entry()
  }
}

/* A crash: the process stops for good; the kernel drops its flock; its temporary file and its
 * lock file stay; its pid is dead from now on. */
inline crash() {
  atomic {
    kill[me] ->
      dead[me] = 1; want[me] = 0; hold[me] = 0;
#ifndef BREAK_GUARD_ON_CRASH            /* negative control: the guard outlives its holder */
      if :: guard == me -> guard = FREE :: else fi;
#endif
      forget_entry()
  }
}

/* ---- the processes -------------------------------------------------------------------------- */

proctype worker(byte me) {
  bit e_present, e_complete, e_old, stale, linked;
  byte e_owner;
  /* acquire (acquireOp): each pass through publish is one of its attempts. */
publish:
  {
    /* @src src/store.ts "Deno.writeFileSync(tempPath, bytes, { createNew: true, mode: 0o644 });" */
    atomic { want[me] = 1; assert(!tmp_present[me]); tmp_present[me] = 1; tmp_complete[me] = 0 };
    tmp_complete[me] = 1;              /* the write(2) of that call */
    /* link(temp, lock): EEXIST if the name is taken. */
    /* @src src/store.ts "Deno.linkSync(tempPath, lockPath);" */
    atomic {
      assert(tmp_present[me]);         /* nobody removed a live writer's temporary file */
      if
      :: !lk_present ->
         lk_present = 1; lk_owner = me; lk_complete = tmp_complete[me]; lk_old = 0;
         hold[me] = 1; want[me] = 0; linked = 1
      :: else
      fi
    };
    /* The code keeps the temporary name linked while its own process holds the lock, so that
     * release can recognise the file by inode instead of by content. That second name changes
     * nothing at the lock name and no decision (a file's identity is its owner here), so the
     * model drops the temporary file at once, as the code does when the link fails. */
    /* @src src/store.ts "removeQuietly(tempPath);" */
    /* @src src/store.ts "if (publish(dir, name, bytes, record)) return record;" */
    atomic {
      tmp_present[me] = 0; tmp_complete[me] = 0;
      if :: linked -> linked = 0; goto critical :: else fi
    };
    /* @src src/store.ts "const entry = readEntry(lockPath);" */
    lstat_entry();
    atomic {
      if
      :: e_present -> read_content()
      :: else
      fi;
      if
      :: !e_present ->
         /* @src src/store.ts "if (entry.kind === \"missing\") continue;" */
         forget_entry(); goto publish
      :: e_present && e_complete && e_owner == me ->
         /* @src src/store.ts "if (entry.kind === \"lock\" && isOwner(entry.record, unitId, pid)) return entry.record;" */
         forget_entry(); goto critical
      :: else
      fi
    };
    /* @src src/store.ts "const verdict = judge(entry);" */
    atomic {
      judge();
      if
      :: !stale ->
         /* held by a live owner, or unreadable and young: acquire returns false, and the
          * worker calls it again */
         /* @src src/store.ts "if (verdict.state === \"held\") return null;" */
         forget_entry(); goto publish
      :: else -> forget_entry()
      fi
    };
    /* Stale or corrupt: under the guard, judge again and remove; then a new attempt. (The
     * limit of MAX_ATTEMPTS is not modelled: giving up returns false, and the worker calls
     * acquire again.) */
    /* @src src/store.ts "yield* withGuard(dir, () => removeIfStale(lockPath));" */
    guard_take();
    remove_if_stale();
    guard_drop();
    goto publish;

critical:
    /* hold: the caller edits the file. Worker 1 may call acquire again while it holds (same
     * unit and pid: mana's idempotent re-acquire); the others never do, which keeps the state
     * space in bounds. Then release (releaseOp). */
    if
    :: me == 1 -> goto publish
    :: guard_take()
    fi;
    /* @src src/store.ts "function* releaseOp(dir: string, name: string, unitId: string, pid: number)" */
    lstat_entry();
    atomic { if :: e_present -> read_content() :: else fi };
    /* @src src/store.ts "if (entry.kind !== \"lock\" || !isOwner(entry.record, unitId, pid)) return false;" */
    /* @src src/store.ts "return remove(lockPath);" */
    atomic {
      if
      :: e_present && e_complete && e_owner == me ->
         assert(lk_present && lk_owner == me);
         lk_present = 0; lk_owner = 0; lk_complete = 0; lk_old = 0;
         hold[me] = 0
      :: else ->
         /* Only a forced removal (clearAll, releaseAllForUnit, rm) can take a live holder's
          * lock, and the model has none: reaching this is a lost lock. */
         assert(false)
      fi;
      forget_entry()
    };
    guard_drop();
    goto publish
  } unless { crash() }
}

proctype cleaner() {
  byte me = CLEANER;
  bit e_present, e_complete, e_old, stale;
  byte e_owner;
  {
end_idle:
    do
    :: /* pruneLocks (scanOp with prune): a temporary file whose writer is dead is removed
        * without the guard; a dead writer never links it. */
       /* @src src/store.ts "if (prune && isAbandonedTemp(name)) removeTemp(lockPath, report);" */
       /* @src src/store.ts "return !isProcessAlive(writer);" */
       d_step {
         if :: tmp_present[1] && dead[1] -> tmp_present[1] = 0; tmp_complete[1] = 0 :: else fi;
         if :: tmp_present[2] && dead[2] -> tmp_present[2] = 0; tmp_complete[2] = 0 :: else fi;
#if NW == 3
         if :: tmp_present[3] && dead[3] -> tmp_present[3] = 0; tmp_complete[3] = 0 :: else fi;
#endif
         skip
       }
    :: /* checkLock (checkOp), and the lock files of listLocks and pruneLocks (scanOp): read and
        * judge without the guard; if stale, judge again and remove under the guard. */
       /* @src src/store.ts "function* checkOp(dir: string, name: string): Op<LockInfo | null>" */
       /* @src src/store.ts "const verdict = judge(entry, cache);" */
       lstat_entry();
       atomic {
         if
         :: e_present -> read_content()
         :: else
         fi;
         if :: !e_present -> forget_entry(); goto end_idle :: else fi
       };
       atomic {
         judge();
         if :: !stale -> forget_entry(); goto end_idle :: else -> forget_entry() fi
       };
       /* @src src/store.ts "const left = yield* withGuard(dir, () => removeIfStale(lockPath));" */
       /* @src src/store.ts "const left = removeIfStale(lockPath, removed);" */
       guard_take();
       remove_if_stale();
       guard_drop()
    od
  } unless { crash() }
}

/* Crashes any process at any step, up to MAXCRASH of them; may stop crashing at any time. */
proctype killer() {
end_idle:
  do
  :: atomic { crashes < MAXCRASH && !dead[1] && !kill[1] -> kill[1] = 1; crashes++ }
  :: atomic { crashes < MAXCRASH && !dead[2] && !kill[2] -> kill[2] = 1; crashes++ }
#if NW == 3
  :: atomic { crashes < MAXCRASH && !dead[3] && !kill[3] -> kill[3] = 1; crashes++ }
#endif
  :: atomic { crashes < MAXCRASH && !dead[CLEANER] && !kill[CLEANER] -> kill[CLEANER] = 1; crashes++ }
  :: break
  od
}

/* Time passes: a half-written file becomes older than the 5 s grace. (Age is observed only for
 * unreadable files, so complete files are not aged.) */
proctype clock() {
end_idle:
  do
  :: atomic { lk_present && !lk_complete && !lk_old -> lk_old = 1 }
  od
}

init {
  atomic {
    dead[PREV] = 1;
    /* What the lock name holds when the run starts. */
    if
    :: skip                                                   /* nothing */
    :: lk_present = 1; lk_owner = PREV; lk_complete = 1       /* the lock of an owner that died */
    :: lk_present = 1; lk_owner = PREV; lk_complete = 0       /* mana's create-then-write, its
                                                                 writer killed before writing */
    fi;
    run clock();
    run killer();
    run cleaner();
    run worker(1);
    run worker(2);
#if NW == 3
    run worker(3);
#endif
  }
}
