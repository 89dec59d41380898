#!/usr/bin/env bash
# Model-checks the lock protocol with Spin (see docs/protocol.md, "The model").
#
#   docs/model/verify.sh          safety with 3 workers, progress with 2, the negative controls
#   docs/model/verify.sh --full   also progress with 3 workers (23 M states, 4 minutes, 2.4 GB)
#
# Needs spin and gcc (Debian and Ubuntu: apt-get install -y spin gcc). Exits non-zero if the code
# map is out of date, if a property of agentlock.pml is violated or not fully checked, or if a
# negative control (the seed's protocol, the broken variants) is NOT caught. Generated files go
# to docs/model/.build (or $MODEL_BUILD_DIR), which git ignores.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
build="${MODEL_BUILD_DIR:-$here/.build}"
full=0
for arg in "$@"; do
  case "$arg" in
    --full) full=1 ;;
    *) echo "usage: $0 [--full]" >&2; exit 2 ;;
  esac
done
for tool in spin gcc; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "verify: $tool is not installed (Debian and Ubuntu: apt-get install -y spin gcc)" >&2
    exit 2
  fi
done
rm -rf "$build"
mkdir -p "$build"

failures=0
fail() {
  echo "FAIL: $*"
  failures=$((failures + 1))
}
rows=()

# ---- 1. The code map: every step of agentlock.pml names the line of code it stands for. ------
echo "== code map: model step -> code (the tagged text must still be in the file)"
while IFS= read -r tag; do
  model_line="${tag%%:*}"
  file="$(sed -E 's/.*@src ([^ ]+) ".*/\1/' <<<"$tag")"
  text="$(sed -E 's/.*@src [^ ]+ "(.*)" *\*\/.*/\1/; s/\\"/"/g' <<<"$tag")"
  lines="$(grep -nF -- "$text" "$root/$file" 2>/dev/null | cut -d: -f1 | paste -sd, - || true)"
  if [ -z "$lines" ]; then
    fail "agentlock.pml:$model_line names \"$text\", which $file no longer contains: check the model against the code and update the tag"
  else
    printf '  agentlock.pml:%-4s %-30s %s\n' "$model_line" "$file:$lines" "$text"
  fi
done < <(grep -n '@src src/' "$here/agentlock.pml")

# ---- helpers ------------------------------------------------------------------------------------
# compile NAME MODEL "SPIN DEFINES" "GCC FLAGS": spin -a and gcc, in $build/NAME.
compile() {
  local dir="$build/$1"
  mkdir -p "$dir"
  cp "$here/$2" "$dir/"
  # shellcheck disable=SC2086
  if ! (cd "$dir" && spin $3 -a "$2" >spin.log 2>&1 && gcc -O2 $4 -o pan pan.c >gcc.log 2>&1); then
    cat "$dir/spin.log" "$dir/gcc.log" 2>/dev/null || true
    fail "cannot build the verifier for $1"
    return 1
  fi
}

# field FILE WHAT: one figure from a pan report.
field() {
  local re
  case "$2" in
    stored) re='s/^ *([0-9.e+]+) states, stored.*/\1/p' ;;
    transitions) re='s/^ *([0-9.e+]+) transitions \(=.*/\1/p' ;;
    depth) re='s/.*depth reached ([0-9]+),.*/\1/p' ;;
    errors) re='s/.*, errors: ([0-9]+).*/\1/p' ;;
    memory) re='s/^ *([0-9.]+)[[:space:]]+total actual memory usage.*/\1/p' ;;
    time) re='s/^pan: elapsed time ([0-9.e+]+) seconds.*/\1/p' ;;
  esac
  { sed -nE "$re" "$1" 2>/dev/null || true; } | sed -n 1p
}

# report LABEL FILE: print the figures of one run and remember them for the summary.
report() {
  local label="$1" out="$2" verdict="$3"
  local stored transitions depth memory time
  stored="$(field "$out" stored)"
  transitions="$(field "$out" transitions)"
  depth="$(field "$out" depth)"
  memory="$(field "$out" memory)"
  time="$(field "$out" time)"
  echo "  states stored: ${stored:-?}  transitions: ${transitions:-?}  depth: ${depth:-?}  memory: ${memory:-?} MB  time: ${time:-?} s"
  rows+=("$(printf '%-34s %12s %14s %8s %10s %8s  %s' "$label" "${stored:-?}" \
    "${transitions:-?}" "${depth:-?}" "${memory:-?}" "${time:-?}" "$verdict")")
}

# incomplete FILE: whether pan stopped before covering the whole state space.
incomplete() {
  grep -qE 'max search depth too small|reached -DMEMLIM bound|Search not completed|out of memory' "$1"
}

# judge_pass LABEL OUT DIR MODEL "SPIN DEFINES": a finished run must show no error, exhaustively.
judge_pass() {
  local label="$1" out="$2" dir="$3" model="$4" defs="$5" errors
  errors="$(field "$out" errors)"
  if [ "${errors:-1}" != 0 ]; then
    grep -E 'violated|acceptance cycle|invalid end state|error' "$out" | head -n 5 || true
    report "$label" "$out" "VIOLATED"
    fail "$label is violated; the end of the counterexample follows (all of it: cd $dir && spin $defs -t -p -g $model)"
    # shellcheck disable=SC2086
    (cd "$dir" && spin $defs -t -p "$model" 2>&1 | tail -n 100) || true
  elif incomplete "$out"; then
    grep -E 'max search depth|MEMLIM|not completed|out of memory' "$out" | head -n 3 || true
    report "$label" "$out" "INCOMPLETE"
    fail "$label: the search did not cover the whole state space"
  else
    report "$label" "$out" "holds"
  fi
}

# expect_pass NAME LABEL MODEL "SPIN DEFINES" PAN-ARGS...: the property must hold, exhaustively.
expect_pass() {
  local name="$1" label="$2" model="$3" defs="$4"
  shift 4
  local dir="$build/$name"
  echo "== $label: $model $defs, pan $*"
  (cd "$dir" && ./pan "$@" >pan.out 2>&1) || true
  judge_pass "$label" "$dir/pan.out" "$dir" "$model" "$defs"
}

# expect_fail NAME LABEL MODEL "SPIN DEFINES" PAN-ARGS...: a negative control must be caught.
expect_fail() {
  local name="$1" label="$2" model="$3" defs="$4"
  shift 4
  local dir="$build/$name" errors
  echo "== $label: $model $defs, pan $* (must be violated)"
  (cd "$dir" && ./pan "$@" >pan.out 2>&1) || true
  errors="$(field "$dir/pan.out" errors)"
  if [ "${errors:-0}" = 0 ]; then
    report "$label" "$dir/pan.out" "NOT CAUGHT"
    fail "$label was expected to be violated, and the verifier found no violation"
    return 1
  fi
  grep -E 'violated|acceptance cycle' "$dir/pan.out" | head -n 1 || true
  report "$label" "$dir/pan.out" "violated, as it must be"
}

# ---- 2. agentlock.pml: safety with 3 workers, exhaustively. -----------------------------------
# -DCOLLAPSE is lossless state compression (no hash compaction, no bitstate): every state is
# stored exactly. -m: search depth limit; a run that hits it counts as a failure.
if compile mutex agentlock.pml "-DNW=3" "-DSAFETY -DCOLLAPSE -DMEMLIM=4096"; then
  # Same verifier, its own directory (pan writes its trail where it runs).
  cp -r "$build/mutex" "$build/nolost"
  if [ "$(nproc 2>/dev/null || echo 1)" -ge 2 ]; then
    # The two runs share nothing: on two cores, run them side by side.
    (cd "$build/nolost" && ./pan -m1000000 -w25 -N nolost >pan.out 2>&1) &
    nolost_pid=$!
    expect_pass mutex mutex agentlock.pml "-DNW=3" -m1000000 -w25 -N mutex
    wait "$nolost_pid" || true
    echo "== nolost: agentlock.pml -DNW=3, pan -m1000000 -w25 -N nolost (ran alongside mutex)"
    judge_pass nolost "$build/nolost/pan.out" "$build/nolost" agentlock.pml "-DNW=3"
  else
    expect_pass mutex mutex agentlock.pml "-DNW=3" -m1000000 -w25 -N mutex
    expect_pass nolost nolost agentlock.pml "-DNW=3" -m1000000 -w25 -N nolost
  fi
fi

# ---- 3. agentlock.pml: progress under weak fairness. ------------------------------------------
# With 3 workers the fair search stores 23 M states (4 minutes, 2.4 GB): --full runs it. CI
# checks progress with 2 workers, every crash point included.
if compile progress2 agentlock.pml "-DNW=2" "-DCOLLAPSE -DNFAIR=3 -DMEMLIM=4096"; then
  expect_pass progress2 "progress (2 workers)" agentlock.pml "-DNW=2" -m1000000 -w24 -a -f -N progress
fi
if [ "$full" = 1 ] && compile progress3 agentlock.pml "-DNW=3" "-DCOLLAPSE -DNFAIR=3 -DMEMLIM=8192"; then
  expect_pass progress3 "progress (3 workers)" agentlock.pml "-DNW=3" -m2000000 -w27 -a -f -N progress
fi

# ---- 4. Negative controls: the model can fail. -------------------------------------------------
# The seed's protocol (create, then write; remove a stale or unreadable lock by name, no guard).
# Breadth-first, so the counterexample printed is a shortest one.
if compile seed seed.pml "-DNW=3" "-DBFS -DSAFETY -DMEMLIM=4096"; then
  if expect_fail seed "mutex (seed protocol)" seed.pml "-DNW=3" -N mutex; then
    depth="$(sed -nE 's/.*violated.*\(at depth ([0-9]+)\).*/\1/p' "$build/seed/pan.out" | sed -n 1p)"
    (cd "$build/seed" && spin -DNW=3 -T -t seed.pml >replay.txt 2>&1) || true
    (cd "$build/seed" && spin -DNW=3 -t -p -g seed.pml >trail.txt 2>&1) || true
    steps="$(grep -cE '^  (worker [0-9]|cleaner)' "$build/seed/replay.txt" || true)"
    echo "  counterexample: $steps steps (system calls) by the processes; pan depth $depth (statements, init included)"
    echo "  (worker N is pid N; the cleaner is pid 5; pid 4 owned a lock before the run and is dead)"
    grep -E '^  (worker [0-9]|cleaner)' "$build/seed/replay.txt" | sed 's/^/  /'
    echo "  -> two workers hold the lock. Every statement of the trail: $build/seed/trail.txt"
    rows[${#rows[@]} - 1]="${rows[${#rows[@]} - 1]}: $steps steps"
  fi
fi
# Our protocol without the second judgement under the guard: two processes that judged the same
# stale lock remove each other's new lock.
if compile break-rejudge agentlock.pml "-DNW=2 -DBREAK_REJUDGE" "-DSAFETY"; then
  expect_fail break-rejudge "mutex (no re-judge under guard)" agentlock.pml "-DNW=2 -DBREAK_REJUDGE" -m1000000 -N mutex || true
fi
# Our protocol with a guard that outlives its holder: progress must fail.
if compile break-guard agentlock.pml "-DNW=2 -DBREAK_GUARD_ON_CRASH" "-DNFAIR=3"; then
  expect_fail break-guard "progress (guard kept on crash)" agentlock.pml "-DNW=2 -DBREAK_GUARD_ON_CRASH" -m1000000 -a -f -N progress || true
fi

# ---- Summary -------------------------------------------------------------------------------------
echo
echo "== summary (spin $(spin -V | sed -nE 's/Spin Version ([0-9.]+).*/\1/p'); exhaustive searches, every state stored exactly: no hash compaction, no bitstate; -DCOLLAPSE, lossless, for the big ones)"
printf '%-34s %12s %14s %8s %10s %8s  %s\n' property "states" transitions depth "memory MB" "time s" result
for row in "${rows[@]}"; do echo "$row"; done
if [ "$failures" -gt 0 ]; then
  echo "verify: $failures failure(s)"
  exit 1
fi
echo "verify: all properties hold; every negative control was caught"
