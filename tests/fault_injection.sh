#!/usr/bin/env bash
# Fault injection: runs short jobs with the Nth OpenCL call or host allocation failing
# (clopt built with -DCLOPT_FAULT_INJECTION=ON, usually under ASan/LSan). Each run must
# - reach its fault (host/fault.c says "clopt fault: injected at point N"): a run that
#   never got there proves nothing;
# - end with status 1 or 2 and one "clopt: error:" line, or end as the clean run did (its
#   status, and every output bit for bit: --out, the checkpoint, the trace and the JSON
#   less their timings, the tuning database, stdout), when the failed call was one clopt
#   can do without; a failed query that silently changed a result (a device that "has no
#   fp64" switching to the float paths) is caught here;
# - never crash, hang, leave a sanitizer report (a leak included) or an OpenCL object
#   unreleased (the fault build counts them: "clopt fault: OpenCL objects live at exit").
# The main jobs ("run", "resume", "check", "target") fail every point they reach; the
# others fail the points their options add (aligned with the "run" job's calls) and an
# even sample of the rest, which keeps the sweep's time in bounds.
# usage: tests/fault_injection.sh path/to/clopt
set -uo pipefail
exe=$1
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
out="$work/o" # every output of a job's run goes here, and nothing else
failures=0
# The user's program cache stays out of it; the "cache" job below names its own.
export CLOPT_PROGRAM_CACHE=off
# Nor the user's tuning database: every run uses the built-in knobs.
export CLOPT_TUNING_DB=/nonexistent/clopt-faults-tuning.json
before_each=: # a command run before every job run, to put back what a run may change
SAMPLES=8     # points of a sampled job spread over all of its points
MAX_ADDED=20  # at most this many of the points a sampled job's options add (evenly spread)
skip_stdout=0 # 1 where stdout holds timings
json_keep=.   # the JSON lines compared (the tuner's choice itself depends on timings)
# FAULT_JOBS=REGEX sweeps only the jobs whose names match (while working on one), and
# FAULT_POINTS (see sweep) only some points.
wanted() { [[ -z ${FAULT_JOBS:-} || $1 =~ ^(${FAULT_JOBS})$ ]]; }

# The outputs of a run, one line each, with timings left out: the trace's seconds
# column, the JSON's (and tuning database's) seconds and rates.
digest() {
  local f
  for f in "$out"/*; do
    [ -e "$f" ] || continue
    [ "$skip_stdout" -eq 1 ] && [ "${f##*/}" = stdout ] && continue
    printf '%s ' "${f##*/}"
    case $f in
    *.csv) awk -F, -v OFS=, '{ NF--; print }' "$f" | cksum ;;
    *.json) grep -vE '^\s*"([a-z_]*seconds|[a-z_]*per_second)":' "$f" | grep -E "$json_keep" | cksum ;;
    *) cksum <"$f" ;;
    esac
  done
}

# Runs the job once, fault point n failing (0: none); status in $rc, stderr in $err.
run_once() {
  local n=$1
  shift
  rm -rf "$out" && mkdir "$out"
  $before_each
  if [ "$n" -eq 0 ]; then
    err=$(CLOPT_FAULT_VERBOSE=1 timeout 300 "$exe" "$@" 2>&1 >"$out/stdout")
  else
    err=$(CLOPT_FAULT_AT=$n timeout 120 "$exe" "$@" 2>&1 >"$out/stdout")
  fi
  rc=$?
}

# The clean run: its status, outputs and fault point names ($work/points.txt).
clean_run() {
  run_once 0 "$@"
  clean_rc=$rc
  clean_digest=$(digest)
  grep -o '^fault point [0-9]*: [A-Za-z_]*' <<<"$err" | sed 's/^fault point [0-9]*: //' \
    >"$work/points.txt"
  if [ "$rc" -eq 1 ] || [ "$rc" -eq 2 ] || [ "$rc" -gt 4 ]; then
    echo "FAIL $name: the clean run ends with status $rc"
    echo "$err" | grep -v '^fault point' | tail -5
    failures=$((failures + 1))
  fi
  if grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:|^clopt fault: OpenCL' <<<"$err"; then
    echo "FAIL $name: the clean run has a report"
    echo "$err" | grep -v '^fault point' | head -40
    failures=$((failures + 1))
  fi
}

inject() { # name, fault point, arguments
  local name=$1 n=$2
  shift 2
  run_once "$n" "$@"
  if ! grep -q "^clopt fault: injected at point $n " <<<"$err"; then
    echo "FAIL $name at fault point $n: the run never reached it (status $rc)"
    failures=$((failures + 1))
  elif grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' <<<"$err"; then
    echo "FAIL $name at fault point $n: sanitizer report"
    echo "$err" | head -40
    failures=$((failures + 1))
  elif grep -q '^clopt fault: OpenCL objects live at exit' <<<"$err"; then
    echo "FAIL $name at fault point $n: $(grep '^clopt fault: OpenCL objects' <<<"$err")"
    echo "$err" | tail -5
    failures=$((failures + 1))
  elif [ "$rc" -eq "$clean_rc" ]; then
    local now
    now=$(digest)
    if [ "$now" != "$clean_digest" ]; then
      echo "FAIL $name at fault point $n: status $rc as the clean run, but other outputs:"
      diff <(echo "$clean_digest") <(echo "$now") | grep '^[<>]' | head -10
      echo "$err" | grep -v '^fault point' | tail -5
      failures=$((failures + 1))
    fi
  elif [ "$rc" -ne 1 ] && [ "$rc" -ne 2 ]; then
    echo "FAIL $name at fault point $n: exit status $rc (clean: $clean_rc)"
    echo "$err" | tail -5
    failures=$((failures + 1))
  elif ! grep -q '^clopt: error: ' <<<"$err"; then
    echo "FAIL $name at fault point $n: status $rc without an error line"
    echo "$err" | tail -5
    failures=$((failures + 1))
  fi
}

# Fails the given points (none: every point from skip + 1) of a job.
sweep() { # name, points ("all:SKIP" or a list), arguments
  local name=$1 points=$2
  shift 2
  wanted "$name" || return 0
  local total
  total=$(wc -l <"$work/points.txt")
  if [ "$total" -lt 10 ]; then
    echo "FAIL $name: only $total fault points in a clean run (is this a fault-injection build?)"
    failures=$((failures + 1))
    return
  fi
  if [[ $points == all:* ]]; then
    points=$(seq $((${points#all:} + 1)) "$total")
  fi
  # FAULT_POINTS="N ..." fails only those points (while working on one).
  [ -n "${FAULT_POINTS:-}" ] && points=$FAULT_POINTS
  if [ -z "$points" ]; then
    echo "FAIL $name: no fault point to inject"
    failures=$((failures + 1))
    return
  fi
  echo "$name: status $clean_rc; $(wc -w <<<"$points") of $total fault points"
  local n
  for n in $points; do
    inject "$name" "$n" "$@"
  done
}

# A job's points that the "run" job's clean run ($work/base.txt) does not have, as diff
# aligns the two lists of names, and the two after each (the call that ends a changed
# stretch may be aligned with its twin), at most MAX_ADDED of them; and SAMPLES points
# spread evenly over all. (The device and platform queries, the same in every job, are
# the "run" job's.)
added_points() {
  local total
  total=$(wc -l <"$work/points.txt")
  {
    diff --unchanged-line-format= --old-line-format= --new-line-format='%dn
' "$work/base.txt" "$work/points.txt" |
      awk -v total="$total" '{ for (k = 0; k <= 2; ++k) if ($1 + k <= total) print $1 + k }' |
      sort -nu | awk -v m="$MAX_ADDED" '{ p[NR] = $1 } END {
        if (NR <= m) { for (k = 1; k <= NR; ++k) print p[k] }
        else for (k = 0; k < m; ++k) print p[int(k * NR / m) + 1] }'
    awk -v total="$total" -v s="$SAMPLES" 'BEGIN { for (k = 1; k <= s; ++k) print int(k * total / (s + 1)) + 1 }'
  } | sort -nu
}

job_all() { # name, skip, arguments
  local name=$1 skip=$2
  shift 2
  clean_run "$@"
  sweep "$name" "all:$skip" "$@"
}

job_sampled() { # name, arguments
  local name=$1
  shift
  clean_run "$@"
  sweep "$name" "$(added_points)" "$@"
}

base=(--dim 1000 --iters 3 --optimizer adam --loss-every 2 --max-shard-bytes 2056
      --tune wg=1,epw=256 --quiet)
outputs=(--out "$out/theta.npy" --trace "$out/trace.csv" --json "$out/result.json")
# A run that writes every output, with checkpoints and a stencil objective on 4 shards.
name=run
job_all run 0 run "${base[@]}" --objective rosenbrock --checkpoint "$out/run.ckp" \
  --checkpoint-every 2 "${outputs[@]}"
cp "$work/points.txt" "$work/base.txt"

# Resuming it (the checkpoint reader), with an --init file read as well.
"$exe" run "${base[@]}" --objective rosenbrock --checkpoint "$work/keep.ckp" >/dev/null 2>&1
"$exe" run --dim 1000 --iters 1 --out "$work/init.npy" --quiet >/dev/null 2>&1
# The same set-up as "run" comes first; the faults from where reading the checkpoint starts
# (where a run with a file that is no checkpoint stops) are the resume's own.
echo "not a checkpoint" >"$work/junk.ckp"
setup=$(CLOPT_FAULT_VERBOSE=1 "$exe" run "${base[@]}" --objective rosenbrock --iters 4 \
  --resume "$work/junk.ckp" --init "$work/init.npy" 2>&1 >/dev/null | grep -c '^fault point')
name=resume
job_all resume "$setup" run "${base[@]}" --objective rosenbrock --iters 4 \
  --resume "$work/keep.ckp" --init "$work/init.npy" "${outputs[@]}"

# The gradient check, of an objective that fails at the double tolerance and would pass
# at the float one (status 4 when clean).
name=check
job_all check 0 check --objective "$here/grad_off.cl" --dim 50 --samples 20
# A shifted sphere reading its target.
name=target
job_all target 0 run --objective shifted_sphere --param "target=$work/init.npy" --iters 2 \
  --quiet "${outputs[@]}"

# The options whose paths the jobs above never take, on the points they add.
name=divergence # gd with lr 10 on the sphere: the loss overflows in a few dozen steps
job_sampled divergence run --dim 1000 --iters 60 --optimizer gd --lr 10 --loss-every 1 \
  --max-shard-bytes 2056 --tune wg=1,epw=256 --quiet "${outputs[@]}"
name=fused
job_sampled fused run "${base[@]}" --iters 8 --tune wg=1,epw=256,fuse=4 "${outputs[@]}"
name=clip-norm
job_sampled clip-norm run "${base[@]}" --objective rosenbrock --clip-norm 1 "${outputs[@]}"
# Two devices (PoCL's two pthread devices): a second queue, the partials copied between
# devices, halos across them, a checkpoint read while both run.
name=devices
export POCL_DEVICES="pthread pthread"
job_sampled devices run "${base[@]}" --objective rosenbrock --devices 0,1 --checkpoint \
  "$out/run.ckp" --checkpoint-every 2 "${outputs[@]}"
unset POCL_DEVICES
name=double # shards of 4 KiB: 512 doubles, two tiles and a halo
job_sampled double run "${base[@]}" --objective rosenbrock --precision double \
  --max-shard-bytes 4112 --checkpoint "$out/run.ckp" --checkpoint-every 2 "${outputs[@]}"
# The tuner, storing its choice in a database of its own. Which candidate wins depends on
# timings (a candidate whose launch failed is reported in the table and not chosen), so
# only the database's keys and the JSON's other fields are compared: a failed name query
# once put "?" into them.
name=tune
skip_stdout=1 # the table of candidates, with their speeds
json_keep='^\s*"(platform|device|driver|objective|optimizer|precision|size_class|n|tuning_db|version)":'
job_sampled tune tune --dim 1000 --iters 2 --reps 1 --space wg=1,epw=256 --quiet \
  --tuning-db "$out/tuning.json" --json "$out/tune.json"

skip_stdout=0
json_keep=.

# The program cache: a bench whose step program is in the cache directory (made before the
# sweep and put back before every run, so each run sees the same cache) and whose stream
# program is not. That is the hit path (reading and checking the entry, loading the binary)
# and the miss path (building, then storing the entry). Only the fault points the cache
# adds are injected: those of this run missing from the same run without a cache (as `diff`
# aligns the two lists of names), and the two after each. Its outputs are timings only.
cache_args=(--dim 1000 --iters 1 --quiet --tune wg=1,epw=256)
"$exe" run "${cache_args[@]}" --program-cache "$work/cache.seed" >/dev/null 2>&1
restore_cache() { rm -rf "$work/cache" && cp -R "$work/cache.seed" "$work/cache"; }
before_each=restore_cache
name=cache
clean_run bench "${cache_args[@]}" --reps 1 --program-cache off
cp "$work/points.txt" "$work/uncached.txt"
clean_run bench "${cache_args[@]}" --reps 1 --program-cache "$work/cache"
total=$(wc -l <"$work/points.txt")
points=$(diff --unchanged-line-format= --old-line-format= --new-line-format='%dn
' "$work/uncached.txt" "$work/points.txt" | awk -v total="$total" \
  '{ for (k = 0; k <= 2; ++k) if ($1 + k <= total) print $1 + k }' | sort -nu)
if ! grep -qx clCreateProgramWithBinary "$work/points.txt" ||
  ! grep -qx clGetProgramInfo "$work/points.txt"; then
  echo "FAIL cache: a run with the cache neither loaded a binary nor stored one"
  failures=$((failures + 1))
else
  digest() { :; } # bench prints timings only
  clean_digest=
  sweep cache "$points" bench "${cache_args[@]}" --reps 1 --program-cache "$work/cache"
fi
before_each=:
echo "$failures failures"
[ "$failures" -eq 0 ]
