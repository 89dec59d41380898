/*
 * seed.pml: the same system as agentlock.pml (workers, cleaner, killer; one lock name), with the
 * protocol of the seed, mana-core 0.3.2 src/locks.rs:
 *   acquire    open(O_CREAT|O_EXCL) the lock name, then write the content into it;
 *              on EEXIST read it: same owner -> true; live owner -> false;
 *              anything else (stale, or unreadable) -> remove the name and try once more.
 *   release    release_all_for_unit: list_locks (which removes what it cannot read or whose
 *              owner is dead), then remove the names of the unit's locks.
 *   cleaner    check_lock and list_locks: read, and remove the name unless a live owner is read.
 * No guard: every removal is by name, of whatever file bears the name at that moment.
 *
 * This model must FAIL mutual exclusion: verify.sh checks that it does and prints the shortest
 * interleaving that breaks it. Line numbers refer to mana-core 0.3.2 src/locks.rs (the seed).
 * The printf lines narrate a replayed counterexample (spin -t); the verifier ignores them.
 */

#ifndef NW
#define NW 3
#endif

#define PREV     (NW + 1)       /* owner of a lock left before the run: dead from the start */
#define CLEANER  (NW + 2)
#define NPID     (NW + 3)

bit  lk_present;
byte lk_owner;
bit  lk_complete;               /* the content has been written */

bit  dead[NPID];
bit  kill[NPID];
bit  hold[NPID];                /* from acquire returning true until the release */

#if NW == 3
#define HOLDERS  (hold[1] + hold[2] + hold[3])
#define NOLOST   ((!hold[1] || (lk_present && lk_owner == 1)) && \
                  (!hold[2] || (lk_present && lk_owner == 2)) && \
                  (!hold[3] || (lk_present && lk_owner == 3)))
#else
#define HOLDERS  (hold[1] + hold[2])
#define NOLOST   ((!hold[1] || (lk_present && lk_owner == 1)) && \
                  (!hold[2] || (lk_present && lk_owner == 2)))
#endif

ltl mutex  { [] (HOLDERS <= 1) }
ltl nolost { [] NOLOST }

/* Narration for a replayed counterexample (spin -t). */
inline who() {
  if :: me == CLEANER -> printf("  cleaner:  ") :: else -> printf("  worker %d: ", me) fi
}

/* read_lock (locks.rs:216-219): read_to_string + serde_json::from_str. None if the name is free
 * or the file does not parse (yet). */
inline read_lock() {
  e_some = lk_present && lk_complete; e_owner = lk_owner;
  if
  :: e_some -> who(); printf("read_lock: owner is pid %d\n", e_owner)
  :: !e_some && lk_present -> who(); printf("read_lock: None (the file is still empty)\n")
  :: !lk_present -> who(); printf("read_lock: None (no file)\n")
  fi
}

/* fs::remove_file(&lock_path): removes whatever file bears the name at this moment. */
inline remove_by_name() {
  if
  :: lk_present ->
     who(); printf("remove_file removes the lock file of pid %d\n", lk_owner);
     lk_present = 0; lk_owner = 0; lk_complete = 0
  :: else -> who(); printf("remove_file: no file\n")
  fi;
  e_some = 0; e_owner = 0
}

inline crash() {
  atomic {
    kill[me] ->
      who(); printf("crashes\n");
      dead[me] = 1; hold[me] = 0; e_some = 0; e_owner = 0
  }
}

/* A worker: acquire -> hold -> release, again and again. The seed's acquire makes two attempts
 * and then returns false; the worker then calls it again, so the model simply attempts again. */
proctype worker(byte me) {
  bit e_some;
  byte e_owner;
attempt:
  {
    /* OpenOptions::new().write(true).create_new(true).open(&lock_path), locks.rs:86-90 */
    if
    :: atomic {
         !lk_present ->
           lk_present = 1; lk_owner = me; lk_complete = 0;
           who(); printf("open(O_CREAT|O_EXCL) creates the lock file, empty\n")
       };
       /* file.write_all(content), locks.rs:92: into the file it created, wherever that is now */
       atomic {
         hold[me] = 1;
         if
         :: lk_present && lk_owner == me && !lk_complete ->
            lk_complete = 1;
            who(); printf("write_all fills it; acquire returns true\n")
         :: else ->
            who(); printf("write_all fills its file, which no longer bears the lock name; acquire returns true\n")
         fi;
         goto critical
       }
    :: atomic { lk_present -> who(); printf("open(O_CREAT|O_EXCL) fails: EEXIST\n") }
    fi;
    /* read_lock(&lock_path), locks.rs:98 */
    atomic {
      read_lock();
      if
      :: e_some && e_owner == me ->                                          /* locks.rs:99-102 */
         e_some = 0; e_owner = 0; hold[me] = 1; goto critical
      :: !e_some -> goto remove_it                                            /* locks.rs:107-110 */
      :: else
      fi
    };
    /* is_process_alive(existing.pid), locks.rs:103-106 */
    atomic {
      if
      :: !dead[e_owner] ->
         who(); printf("pid %d is alive; acquire returns false\n", e_owner);
         e_some = 0; e_owner = 0; goto attempt
      :: else -> who(); printf("pid %d is dead\n", e_owner)
      fi
    };
remove_it:
    /* "Stale or corrupt -- remove and retry": fs::remove_file(&lock_path), locks.rs:109 */
    atomic { remove_by_name(); goto attempt };

critical:
    /* holds the lock; then release_all_for_unit (locks.rs:126-135), which runs list_locks
     * (locks.rs:148-181) first: read_lock, locks.rs:166 */
    atomic {
      read_lock();
      if
      :: e_some && e_owner != me
      :: else -> goto release_remove   /* its own lock (listed, then removed by locks.rs:130),
                                          or unreadable (removed by list_locks, locks.rs:175) */
      fi
    };
    /* is_process_alive(info.pid), locks.rs:167 */
    atomic {
      if
      :: !dead[e_owner] ->             /* another live owner's lock: listed, left alone */
         who(); printf("pid %d is alive: its lock is left alone; released\n", e_owner);
         e_some = 0; e_owner = 0; hold[me] = 0; goto attempt
      :: else                          /* stale: removed by list_locks, locks.rs:175 */
      fi
    };
release_remove:
    atomic {
      remove_by_name(); hold[me] = 0;
      goto attempt
    }
  } unless { crash() }
}

/* The cleaner: check_lock (locks.rs:187-210), and list_locks (locks.rs:148-181), over the one
 * lock name. Both read the file and remove it by name unless they read a live owner. */
proctype cleaner() {
  byte me = CLEANER;
  bit e_some;
  byte e_owner;
  {
end_idle:
    do
    :: atomic {                        /* lock_path.exists(), locks.rs:190, or read_dir, locks.rs:152 */
         lk_present -> who(); printf("the lock file exists\n")
       };
       atomic {
         read_lock();                  /* locks.rs:194, 166 */
         if :: !e_some -> goto clean :: else fi
       };
       atomic {                        /* is_process_alive, locks.rs:196, 167 */
         if
         :: !dead[e_owner] ->
            who(); printf("pid %d is alive: its lock is left alone\n", e_owner);
            e_some = 0; e_owner = 0; goto end_idle
         :: else -> who(); printf("pid %d is dead\n", e_owner)
         fi
       };
clean:
       /* "Stale -- clean it up" / "Corrupt -- clean it up": locks.rs:200, 206, 175 */
       atomic { remove_by_name() }
    od
  } unless { crash() }
}

proctype killer() {
end_idle:
  do
  :: atomic { !dead[1] && !kill[1] -> kill[1] = 1 }
  :: atomic { !dead[2] && !kill[2] -> kill[2] = 1 }
#if NW == 3
  :: atomic { !dead[3] && !kill[3] -> kill[3] = 1 }
#endif
  :: atomic { !dead[CLEANER] && !kill[CLEANER] -> kill[CLEANER] = 1 }
  :: break
  od
}

init {
  atomic {
    dead[PREV] = 1;
    if
    :: skip
    :: lk_present = 1; lk_owner = PREV; lk_complete = 1
    :: lk_present = 1; lk_owner = PREV; lk_complete = 0
    fi;
    run killer();
    run cleaner();
    run worker(1);
    run worker(2);
#if NW == 3
    run worker(3);
#endif
  }
}
