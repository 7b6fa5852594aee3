#!/usr/bin/env bash
# MPI ranks (issue 17): `mpirun -np P clopt run` against one process, bit for bit.
#   tests/mpi_ranks.sh CLOPT MPIRUN
# Each case says what it checks; the first failure ends the script with status 1. Small n
# and tiles of 512 elements (10 tiles: 5+5 with 2 ranks, 3+3+4 with 3), few kernel builds,
# which the program cache keeps between cases.
set -uo pipefail
clopt=$1
mpirun=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work" || exit 1
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# The machine may have fewer cores than ranks; --tune=... (not "--tune ...": mpirun reads a
# separate --tune as its own option).
mpi=("$mpirun" --oversubscribe)
common=(--dim 5000 --tune=wg=64,epw=8 --quiet --program-cache "$work/cache")

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

# The JSON without what may differ between runs of the same computation.
json_core() {
  python3 -c 'import json, sys
d = json.load(open(sys.argv[1]))
for k in ("seconds", "gbytes_per_second", "iterations_per_second", "ranks", "program_cache",
          "communication_seconds"):
    d.pop(k, None)
print(json.dumps(d, sort_keys=True))' "$1"
}

# Case: 1 process and 2 and 3 ranks give the same theta, trace (less its seconds) and JSON
# (less timings and the rank count).
same_as_one() {
  local name=$1
  shift
  "$clopt" run "${common[@]}" "$@" --out "$name.1.npy" --trace "$name.1.csv" \
    --json "$name.1.json" || fail "$name: one process failed"
  for p in 2 3; do
    "${mpi[@]}" -np $p "$clopt" run "${common[@]}" "$@" --out "$name.$p.npy" \
      --trace "$name.$p.csv" --json "$name.$p.json" || fail "$name: $p ranks failed"
    cmp -s "$name.1.npy" "$name.$p.npy" || fail "$name: theta of $p ranks differs"
    diff -q <(cut -d, -f1-4 "$name.1.csv") <(cut -d, -f1-4 "$name.$p.csv") >/dev/null ||
      fail "$name: trace of $p ranks differs"
    [ "$(json_core "$name.1.json")" = "$(json_core "$name.$p.json")" ] ||
      fail "$name: JSON of $p ranks differs"
    grep -q "\"ranks\":[[:space:]]*$p," "$name.$p.json" || fail "$name: JSON lacks \"ranks\": $p"
  done
  echo "ok: $name, 1 process = 2 ranks = 3 ranks"
}

# theta_0 from a file, for the stencil (so the halos carry values from the start).
"$clopt" run "${common[@]}" --iters 2 --seed 5 --out init.npy || fail "making init.npy"
same_as_one gd --optimizer gd --iters 30
same_as_one adam --optimizer adam --iters 30 --loss-every 3
same_as_one stencil --objective laplacian --optimizer gd --lr 0.1 --iters 30 --init init.npy
# A grid stencil: 50x100 (n = --dim), a halo of one 100-element plane crosses the ranks.
same_as_one grid --shape 50,100 --objective poisson --param source=init.npy --optimizer gd \
  --lr 0.1 --iters 30 --init init.npy
# A two-stage fold (rwg > 1) whose groups the ranks own: 79 tiles of 64 (the last one short),
# one partial each, in 5 groups of 16 (the last of 15): 2+3 groups on 2 ranks, 1+2+2 on 3.
# Each rank folds its own groups; only the groups' pairs cross ranks (a later --tune wins).
groups=(--tune=wg=16,epw=4,partials=group,rwg=2)
same_as_one groups "${groups[@]}" --objective ellipsoid --optimizer adam --iters 30 --loss-every 3
same_as_one groups_stencil "${groups[@]}" --objective laplacian --optimizer gd --lr 0.1 \
  --iters 30 --init init.npy
# lbfgs/cg: the dot products of the line search fold every rank's partials in tile order.
same_as_one lbfgs --objective ellipsoid --optimizer lbfgs --iters 15
same_as_one cg --objective ellipsoid --optimizer cg --iters 15
same_as_one lbfgs_stencil --objective rosenbrock --optimizer lbfgs --history 3 --iters 15 \
  --init init.npy
same_as_one cg_stencil --objective rosenbrock --optimizer cg --iters 15 --init init.npy

# Case: a checkpoint written by 2 ranks is the one process's, and resumes with 1 and 3.
adam=(run "${common[@]}" --optimizer adam)
"$clopt" "${adam[@]}" --iters 40 --out full.npy || fail "uninterrupted run"
"$clopt" "${adam[@]}" --iters 15 --checkpoint ck1.bin --checkpoint-every 5 || fail "1 process checkpoint"
"${mpi[@]}" -np 2 "$clopt" "${adam[@]}" --iters 15 --checkpoint ck2.bin --checkpoint-every 5 ||
  fail "2 ranks checkpoint"
cmp -s ck1.bin ck2.bin || fail "the checkpoint of 2 ranks differs from one process's"
"$clopt" "${adam[@]}" --iters 40 --resume ck2.bin --out r1.npy || fail "resume with 1"
"${mpi[@]}" -np 3 "$clopt" "${adam[@]}" --iters 40 --resume ck2.bin --out r3.npy ||
  fail "resume with 3"
cmp -s full.npy r1.npy || fail "resumed with 1 process, theta differs"
cmp -s full.npy r3.npy || fail "resumed with 3 ranks, theta differs"
echo "ok: checkpoint of 2 ranks = 1 process's; resumed with 1 and 3 ranks"

# Case: a checkpoint of more than one gather chunk (2^20 elements): ranks other than 0 take
# part in rank 0's gather a chunk at a time, and the file is still one process's.
big=(run "${common[@]}" --dim 2100001 --optimizer adam --iters 4 --checkpoint-every 2)
"$clopt" "${big[@]}" --checkpoint big1.bin || fail "1 process, large checkpoint"
"${mpi[@]}" -np 3 "$clopt" "${big[@]}" --checkpoint big3.bin || fail "3 ranks, large checkpoint"
cmp -s big1.bin big3.bin || fail "the large checkpoint of 3 ranks differs from one process's"
echo "ok: a checkpoint of several gather chunks from 3 ranks = 1 process's"

# Case: lbfgs/cg checkpoints (x, g, d and the history pairs, gathered in rank order) written
# by 2 ranks are the one process's bytes, and resume with 1 and 3 ranks bit for bit.
qn_checkpoint() {
  local name=$1
  shift
  local qn=(run "${common[@]}" "$@")
  "$clopt" "${qn[@]}" --iters 25 --out "$name.full.npy" || fail "$name: uninterrupted run"
  "$clopt" "${qn[@]}" --iters 12 --checkpoint "$name.ck1" --checkpoint-every 5 ||
    fail "$name: 1 process checkpoint"
  "${mpi[@]}" -np 2 "$clopt" "${qn[@]}" --iters 12 --checkpoint "$name.ck2" \
    --checkpoint-every 5 || fail "$name: 2 ranks checkpoint"
  cmp -s "$name.ck1" "$name.ck2" ||
    fail "$name: the checkpoint of 2 ranks differs from one process's"
  "$clopt" "${qn[@]}" --iters 25 --resume "$name.ck2" --out "$name.r1.npy" \
    --trace "$name.r1.csv" || fail "$name: resume with 1"
  "${mpi[@]}" -np 3 "$clopt" "${qn[@]}" --iters 25 --resume "$name.ck2" --out "$name.r3.npy" \
    --trace "$name.r3.csv" || fail "$name: resume with 3"
  cmp -s "$name.full.npy" "$name.r1.npy" || fail "$name: resumed with 1 process, theta differs"
  cmp -s "$name.full.npy" "$name.r3.npy" || fail "$name: resumed with 3 ranks, theta differs"
  diff -q <(cut -d, -f1-4 "$name.r1.csv") <(cut -d, -f1-4 "$name.r3.csv") >/dev/null ||
    fail "$name: the resumed traces of 1 process and 3 ranks differ"
  echo "ok: $name checkpoint of 2 ranks = 1 process's; resumed with 1 and 3 ranks"
}
qn_checkpoint lbfgs_ck --objective rosenbrock --optimizer lbfgs --history 3 --init init.npy
qn_checkpoint cg_ck --objective ellipsoid --optimizer cg --precision double

# Case: an lbfgs checkpoint that rank 0 cannot write (a full file system) leaves every rank
# in step: they agree it was not written and all take the run's last one (before, rank 1
# counted it written and skipped that collective: a hang). Needs a small tmpfs (root).
mkdir -p full
if mount -t tmpfs -o size=16k tmpfs full 2>/dev/null; then
  timeout 120 "${mpi[@]}" -np 2 "$clopt" run "${common[@]}" --optimizer lbfgs --iters 20 \
    --checkpoint full/ck.clopt --checkpoint-every 5 2>full.txt
  rc=$?
  umount full
  [ $rc -ne 124 ] || fail "a checkpoint rank 0 cannot write: the ranks hung"
  grep -q "checkpoint writes to .* failed" full.txt ||
    fail "a checkpoint rank 0 cannot write: no message (exit status $rc)"
  echo "ok: an lbfgs checkpoint rank 0 cannot write ends every rank with its message"
else
  echo "skip: a full file system (cannot mount a tmpfs here)"
fi

# Case: bad input is reported once, with exit status 2.
"${mpi[@]}" -np 2 "$clopt" run "${common[@]}" --iters 5 --optimizer nosuch 2>bad.txt
rc=$?
[ $rc -eq 2 ] || fail "bad input: exit status $rc, not 2"
[ "$(grep -c '^clopt: error:' bad.txt)" -eq 1 ] || fail "bad input: not reported exactly once"
# More ranks on a node than it has devices (two PoCL devices, three ranks).
POCL_DEVICES="pthread pthread" "${mpi[@]}" -x POCL_DEVICES -np 3 "$clopt" run "${common[@]}" \
  --iters 5 2>devices.txt
rc=$?
[ $rc -eq 2 ] || fail "3 ranks on 2 devices: exit status $rc, not 2"
grep -q "has 2 OpenCL devices" devices.txt || fail "3 ranks on 2 devices: no message"
echo "ok: bad input and too few devices exit 2, reported once"

# Case: a bad file on one rank's path ends every rank within seconds, with its message.
cat >one_bad.sh <<EOF
#!/bin/sh
init=init.npy
[ "\$OMPI_COMM_WORLD_RANK" = 1 ] && init=missing.npy
exec "$clopt" run ${common[*]} --iters 100000000 --init \$init
EOF
chmod +x one_bad.sh
timeout 60 "${mpi[@]}" -np 2 ./one_bad.sh 2>one_bad.txt
rc=$?
[ $rc -eq 2 ] || fail "a bad file on rank 1: exit status $rc, not 2 (124: it hung)"
grep -q "missing.npy" one_bad.txt || fail "a bad file on rank 1: its message is missing"
echo "ok: a bad file on one rank stops every rank"

# Case: a killed rank ends every rank within seconds.
cat >killable.sh <<EOF
#!/bin/sh
echo \$\$ >pid.\$OMPI_COMM_WORLD_RANK
exec "$clopt" run ${common[*]} --iters 100000000
EOF
chmod +x killable.sh
rm -f pid.*
timeout 120 "${mpi[@]}" -np 2 ./killable.sh 2>/dev/null &
job=$!
for _ in $(seq 600); do [ -s pid.1 ] && break; sleep 0.1; done
sleep 2
kill -KILL "$(cat pid.1)" 2>/dev/null
wait $job
rc=$?
[ $rc -ne 0 ] && [ $rc -ne 124 ] || fail "a killed rank: exit status $rc (124: it hung)"
echo "ok: a killed rank stops every rank"

# Case: SIGTERM to mpirun stops every rank after the same iteration with a checkpoint, from
# which a resumed run goes on bit for bit.
# On SIGTERM, Open MPI's mpirun sends the ranks SIGCONT, then SIGTERM, then SIGKILL, each
# odls_base_sigkill_timeout seconds (1 by default) after the one before: the ranks get 3 s
# for their closing checkpoint, which a loaded 2-core machine may need.
"${mpi[@]}" --mca odls_base_sigkill_timeout 3 -np 2 "$clopt" "${adam[@]}" \
  --iters 100000000 --checkpoint sig.bin --checkpoint-every 500 2>/dev/null &
job=$!
# Once the first periodic checkpoint is there, the ranks are in the loop.
for _ in $(seq 600); do [ -s sig.bin ] && break; sleep 0.1; done
kill -TERM $job
wait $job
echo "SIGTERM: mpirun's exit status $?"
[ -s sig.bin ] || fail "SIGTERM: no checkpoint"
stop=$("$clopt" checkpoint info sig.bin | awk '$1 == "iteration" {print $2}')
[ -n "$stop" ] || fail "SIGTERM: the checkpoint has no iteration"
"$clopt" "${adam[@]}" --iters $((stop + 10)) --out sig1.npy || fail "SIGTERM: uninterrupted run"
"$clopt" "${adam[@]}" --iters $((stop + 10)) --resume sig.bin --out sig2.npy ||
  fail "SIGTERM: resumed run"
cmp -s sig1.npy sig2.npy || fail "SIGTERM: the resumed theta differs"
echo "ok: SIGTERM stops every rank at iteration $stop with a checkpoint that resumes"

# Case: SIGTERM stops lbfgs's ranks together (the stop is agreed each iteration: a rank
# leaving alone would leave the other waiting in a collective).
rm -f qn_sig.csv
"${mpi[@]}" --mca odls_base_sigkill_timeout 3 -np 2 "$clopt" run --dim 2e5 \
  --program-cache "$work/cache" --objective ellipsoid --param cond=1e12 --optimizer lbfgs \
  --iters 100000000 --ftol 0 --trace qn_sig.csv >/dev/null 2>qn_sig.txt &
job=$!
for _ in $(seq 600); do [ -f qn_sig.csv ] && [ "$(wc -l <qn_sig.csv)" -gt 3 ] && break; sleep 0.1; done
kill -TERM $job
for _ in $(seq 600); do kill -0 $job 2>/dev/null || break; sleep 0.1; done
if kill -0 $job 2>/dev/null; then
  kill -KILL $job
  fail "SIGTERM on lbfgs ranks: still running after 60 s"
fi
wait $job
grep -q "stopped by SIGTERM after iteration" qn_sig.txt || fail "SIGTERM on lbfgs ranks: no stop line"
echo "ok: SIGTERM stops lbfgs's ranks together"

# Case: communication_seconds counts the loop's per-iteration messages only (loss partials,
# halos, dots, the stop agreement), never set-up or checkpoint gathers: 0 <= it <= seconds.
for p in 2 3; do
  "${mpi[@]}" -np $p "$clopt" run "${common[@]}" --optimizer adam --iters 20 \
    --checkpoint comm.ck --checkpoint-every 5 --json "comm.$p.json" || fail "comm: $p ranks failed"
  python3 -c 'import json, sys
d = json.load(open(sys.argv[1]))
c, s = d["communication_seconds"], d["seconds"]
sys.exit(0 if 0 <= c <= s else 1)' "comm.$p.json" ||
    fail "comm: $p ranks: communication_seconds is not within [0, seconds]: $(cat "comm.$p.json")"
done
echo "ok: communication_seconds within [0, the run's seconds]"

# Case (fault-injection builds): one rank fails right before a collective (a named fault
# point, host/fault.h) and every rank stops within seconds, with a non-zero status each and
# one line naming the failing rank and its cause.
# (The probe's output goes to a file: grep -q closing the pipe early would fail it.)
CLOPT_FAULT_VERBOSE=1 "$clopt" devices >/dev/null 2>fault_probe.txt
if grep -q '^fault point' fault_probe.txt; then
  one_fails() {
    local point=$1
    shift
    cat >fails.sh <<EOS
#!/bin/sh
[ "\$OMPI_COMM_WORLD_RANK" = 1 ] && export CLOPT_FAULT_POINT="$point" CLOPT_FAULT_POINT_AT=2
"$clopt" run ${common[*]} $* 2>>fails.err.\$OMPI_COMM_WORLD_RANK
echo \$? >rc.\$OMPI_COMM_WORLD_RANK
EOS
    chmod +x fails.sh
    rm -f rc.* fails.err.*
    timeout 120 "${mpi[@]}" -x ASAN_OPTIONS=detect_leaks=0 -np 3 ./fails.sh
    [ $? -ne 124 ] || fail "$point failing on rank 1: the ranks hung"
    for r in 0 1 2; do
      [ -s rc.$r ] && [ "$(cat rc.$r)" -ne 0 ] || fail "$point failing on rank 1: rank $r exit status $(cat rc.$r 2>/dev/null)"
    done
    [ "$(cat fails.err.* | grep -c '^clopt: error:')" -eq 1 ] ||
      fail "$point failing on rank 1: not one error line: $(cat fails.err.*)"
    grep -q 'rank 1 of 3 failed.*injected' fails.err.0 ||
      fail "$point failing on rank 1: rank 0 does not say so: $(cat fails.err.0)"
    echo "ok: $point failing on rank 1 stops all 3 ranks with one line"
  }
  one_fails "ranks partials" --optimizer adam --iters 30
  one_fails "ranks halo" --objective laplacian --optimizer gd --lr 0.1 --iters 30
  one_fails "ranks dots" --objective ellipsoid --optimizer lbfgs --iters 15
  one_fails "ranks checkpoint" --optimizer adam --iters 30 --checkpoint fck.bin --checkpoint-every 5
  one_fails "ranks checkpoint" --objective ellipsoid --optimizer cg --iters 15 --checkpoint fqn.bin \
    --checkpoint-every 5
else
  echo "skip: failures of one rank at a collective (needs -DCLOPT_FAULT_INJECTION=ON)"
fi
