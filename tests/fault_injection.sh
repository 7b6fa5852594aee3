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

count_points() {
  CLOPT_FAULT_VERBOSE=1 "$exe" "$@" 2>&1 >/dev/null | grep -c '^fault point'
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
  local n rc err
  for n in $(seq $((skip + 1)) "$total"); do
    rm -f "$work"/out.* "$work"/run.ckp.tmp
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
echo "$failures failures"
[ "$failures" -eq 0 ]
