#!/usr/bin/env bash
# Fault injection: runs short jobs with the Nth OpenCL call or host allocation failing, for
# every N the job reaches (clopt built with -DCLOPT_FAULT_INJECTION=ON, usually under
# ASan/LSan). Each must end with status 1 or 2 and one "clopt: error:" line, or succeed
# when the failed call was one clopt can do without; never a crash, a hang or a
# sanitizer report (a leak included).
# usage: tests/fault_injection.sh path/to/clopt
set -uo pipefail
exe=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0
# The user's program cache stays out of it; the "cache" job below names its own.
export CLOPT_PROGRAM_CACHE=off
# Nor the user's tuning database: every run uses the built-in knobs.
export CLOPT_TUNING_DB=/nonexistent/clopt-faults-tuning.json
before_each=: # a command run before every job run, to put back what a run may change

count_points() {
  CLOPT_FAULT_VERBOSE=1 "$exe" "$@" 2>&1 >/dev/null | grep -c '^fault point'
}

# The names of the fault points of a clean run, one a line.
point_names() {
  CLOPT_FAULT_VERBOSE=1 "$exe" "$@" 2>&1 >/dev/null | grep -o '^fault point [0-9]*: [A-Za-z_]*' |
    sed 's/^fault point [0-9]*: //'
}

inject() { # name, fault point, arguments
  local name=$1 n=$2
  shift 2
  local rc err
  rm -f "$work"/out.* "$work"/run.ckp.tmp*
  $before_each
  err=$(CLOPT_FAULT_AT=$n timeout 120 "$exe" "$@" 2>&1 >/dev/null)
  rc=$?
  if grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' <<<"$err"; then
    echo "FAIL $name at fault point $n: sanitizer report"
    echo "$err" | head -40
    failures=$((failures + 1))
  elif [ "$rc" -ne 0 ] && [ "$rc" -ne 1 ] && [ "$rc" -ne 2 ]; then
    echo "FAIL $name at fault point $n: exit status $rc"
    echo "$err" | tail -5
    failures=$((failures + 1))
  elif [ "$rc" -ne 0 ] && ! grep -q '^clopt: error: ' <<<"$err"; then
    echo "FAIL $name at fault point $n: status $rc without an error line"
    echo "$err" | tail -5
    failures=$((failures + 1))
  fi
}

check_job() { # name, fault points to skip (set-up the "run" job covers already), arguments
  local name=$1 skip=$2
  shift 2
  local total
  total=$(count_points "$@")
  if [ "$total" -lt 10 ]; then
    echo "FAIL $name: only $total fault points in a clean run (is this a fault-injection build?)"
    failures=$((failures + 1))
    return
  fi
  echo "$name: $total fault points, from $((skip + 1))"
  local n
  for n in $(seq $((skip + 1)) "$total"); do
    inject "$name" "$n" "$@"
  done
}

base=(--dim 1000 --iters 3 --optimizer adam --loss-every 2 --max-shard-bytes 2056
      --tune wg=1,epw=256 --quiet)
# A run that writes every output, with checkpoints and a stencil objective on 4 shards.
check_job "run" 0 run "${base[@]}" --objective rosenbrock --checkpoint "$work/run.ckp" \
  --checkpoint-every 2 --out "$work/out.npy" --trace "$work/out.csv" --json "$work/out.json"
# Resuming it (the checkpoint reader), with an --init file read as well.
"$exe" run "${base[@]}" --objective rosenbrock --checkpoint "$work/keep.ckp" >/dev/null 2>&1
"$exe" run --dim 1000 --iters 1 --out "$work/init.npy" --quiet >/dev/null 2>&1
# The same set-up as "run" comes first; the faults from where reading the checkpoint starts
# (where a run with a file that is no checkpoint stops) are the resume's own.
echo "not a checkpoint" >"$work/junk.ckp"
setup=$(count_points run "${base[@]}" --objective rosenbrock --iters 4 --resume "$work/junk.ckp" \
  --init "$work/init.npy")
check_job "resume" "$setup" run "${base[@]}" --objective rosenbrock --iters 4 \
  --resume "$work/keep.ckp" --init "$work/init.npy"
# The gradient check, and a shifted sphere reading its target.
check_job "check" 0 check --objective laplacian --dim 50 --samples 20
check_job "target" 0 run --objective shifted_sphere --param "target=$work/init.npy" --iters 2 \
  --quiet
# The program cache: a bench whose step program is in the cache directory (made before the
# sweep and put back before every run, so each run sees the same cache) and whose stream
# program is not. That is the hit path (reading and checking the entry, loading the binary)
# and the miss path (building, then storing the entry). Only the fault points the cache
# adds are injected: those of this run missing from the same run without a cache (as `diff`
# aligns the two lists of names), and the two after each, since the call that ends a
# changed stretch may be aligned with its twin of the uncached run.
cache_args=(--dim 1000 --iters 1 --quiet --tune wg=1,epw=256)
"$exe" run "${cache_args[@]}" --program-cache "$work/cache.seed" >/dev/null 2>&1
restore_cache() { rm -rf "$work/cache" && cp -R "$work/cache.seed" "$work/cache"; }
before_each=restore_cache
restore_cache
point_names bench "${cache_args[@]}" --reps 1 --program-cache "$work/cache" >"$work/cached.txt"
point_names bench "${cache_args[@]}" --reps 1 --program-cache off >"$work/uncached.txt"
total=$(wc -l <"$work/cached.txt")
points=$(diff --unchanged-line-format= --old-line-format= --new-line-format='%dn
' "$work/uncached.txt" "$work/cached.txt" | awk -v total="$total" \
  '{ for (k = 0; k <= 2; ++k) if ($1 + k <= total) print $1 + k }' | sort -nu)
if ! grep -qx clCreateProgramWithBinary "$work/cached.txt" ||
  ! grep -qx clGetProgramInfo "$work/cached.txt"; then
  echo "FAIL cache: a run with the cache neither loaded a binary nor stored one"
  failures=$((failures + 1))
else
  echo "cache: $(wc -w <<<"$points") of $total fault points"
  for n in $points; do
    inject cache "$n" bench "${cache_args[@]}" --reps 1 --program-cache "$work/cache"
  done
fi
before_each=:
echo "$failures failures"
[ "$failures" -eq 0 ]
