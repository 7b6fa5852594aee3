#!/usr/bin/env bash
# Records what clopt computes for a matrix of runs, so that a change meant to keep behaviour
# (a refactor) can be shown byte-identical: run it with the old and the new binary into two
# folders and `diff -r` them.
#   scripts/behaviour_matrix.sh CLOPT_BINARY OUT_DIR
# Every optimizer on every built-in objective, float and double, one and several shards,
# fuse 1 and 8, a checkpoint resume and a few bad inputs (their exit status and message).
# Per run: theta (--out), the trace without its seconds column, the JSON without timings.
set -euo pipefail
clopt=$(realpath "$1")
out=$2
mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export CLOPT_TUNING_DB="$work/none.json"

python3 - "$work/target.npy" <<'PY'
import struct, sys
n = 333
header = "{'descr': '<f8', 'fortran_order': False, 'shape': (%d,), }" % n
pad = 64 - (10 + len(header) + 1) % 64
header = header + " " * pad + "\n"
with open(sys.argv[1], "wb") as f:
    f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode())
    f.write(b"".join(struct.pack("<d", 0.5 + 0.001 * i) for i in range(n)))
PY

strip_outputs() { # name: drops timings from the trace and the JSON
  local name=$1
  if [ -f "$work/$name.csv" ]; then
    cut -d, -f1-4 "$work/$name.csv" >"$out/$name.trace"
  fi
  if [ -f "$work/$name.json" ]; then
    grep -vE '"(seconds|gbytes_per_second|iterations_per_second)"' "$work/$name.json" >"$out/$name.json"
  fi
  if [ -f "$work/$name.npy" ]; then
    cp "$work/$name.npy" "$out/$name.npy"
  fi
}

run_case() { # name, clopt run arguments...
  local name=$1
  shift
  local rc=0
  "$clopt" run --quiet --program-cache off --out "$work/$name.npy" --trace "$work/$name.csv" \
    --json "$work/$name.json" "$@" 2>"$work/$name.stderr" || rc=$?
  echo "$rc" >"$out/$name.rc"
  # Messages name files in the scratch folder, whose name differs on every run.
  sed "s#$work#WORK#g" "$work/$name.stderr" >"$out/$name.stderr"
  strip_outputs "$name"
}

objective_args() { # objective name -> its extra arguments
  case $1 in
  shifted_sphere) echo "--param target=$work/target.npy" ;;
  ellipsoid) echo "--param cond=100 --lr 0.004" ;;
  rosenbrock) echo "--init uniform:0.5 --lr 1e-3" ;;
  double_well | styblinski_tang) echo "--init uniform:0.5 --lr 0.01" ;;
  rastrigin) echo "--init uniform:0.5 --lr 1e-3" ;;
  *) echo "" ;;
  esac
}

optimizers="gd momentum nesterov adam adamw rmsprop adagrad"
objectives="sphere ellipsoid rastrigin styblinski_tang double_well shifted_sphere rosenbrock laplacian"
for precision in float double; do
  for objective in $objectives; do
    for optimizer in $optimizers; do
      # shellcheck disable=SC2046
      run_case "$objective-$optimizer-$precision" --objective "$objective" --dim 333 \
        --iters 23 --optimizer "$optimizer" --precision "$precision" \
        $(objective_args "$objective")
    done
  done
done
# Several shards (tiles of 64 floats, shards of 4 tiles: 4 shards for 1000), group partials,
# strided layout.
for optimizer in gd adam; do
  run_case "shards-$optimizer" --dim 1000 --iters 17 --optimizer "$optimizer" \
    --max-shard-bytes 1024 --tune wg=4,epw=16,vw=4,fblock=4
  run_case "shards-rosenbrock-$optimizer" --objective rosenbrock --dim 1000 --iters 17 \
    --optimizer "$optimizer" --max-shard-bytes 1024 --tune wg=4,epw=16,vw=4,fblock=4 \
    --init uniform:0.5 --lr 1e-3
  run_case "strided-$optimizer" --dim 1000 --iters 17 --optimizer "$optimizer" \
    --tune layout=strided,partials=group,wg=64,epw=8,vw=4,rwg=64 --precision double
done
# Fused steps: 8 per launch, with the loss every 8 and every 3 iterations.
for optimizer in gd momentum adam rmsprop; do
  run_case "fuse8-$optimizer" --dim 1000 --iters 40 --optimizer "$optimizer" --tune fuse=8
  run_case "fuse8-every3-$optimizer" --dim 1000 --iters 40 --optimizer "$optimizer" \
    --tune fuse=8 --loss-every 3 --schedule cosine:40
done
# Hyper-parameters other than the defaults, schedules, clipping, stopping tests.
run_case "adam-hyper" --optimizer adam --amsgrad --beta1 0.8 --beta2 0.99 --eps 1e-6 \
  --weight-decay 0.01 --dim 500 --iters 30 --schedule warmup:5+exp:0.9
run_case "momentum-damp" --optimizer momentum --momentum 0.5 --dampening 0.3 --dim 500 \
  --iters 30 --schedule step:10:0.5 --clip-value 0.5
run_case "rmsprop-centered" --optimizer rmsprop --alpha 0.9 --momentum 0.5 --dim 500 \
  --iters 30 --clip-norm 1 --maximize --target 1e9
run_case "gd-gtol" --dim 500 --iters 1000 --gtol 1e-3 --loss-every 7
run_case "gd-ftol" --dim 500 --iters 1000 --ftol 1e-4
run_case "gd-seed" --dim 500 --iters 5 --seed 42 --init uniform:2
run_case "diverge" --objective double_well --dim 100 --iters 50 --lr 10 --init const:3
# A checkpoint and a resume that continues it.
run_case "resume-a" --optimizer adam --dim 700 --iters 20 --checkpoint "$work/ck"
run_case "resume-b" --optimizer adam --dim 700 --iters 45 --resume "$work/ck"
# Bad input: exit status and message.
run_case "bad-optimizer" --optimizer adamm
run_case "bad-lr" --lr -1
run_case "bad-knob" --tune wg=3
run_case "bad-param" --objective ellipsoid --param cond=0.5
run_case "bad-resume" --optimizer gd --dim 700 --resume "$work/ck"
echo "behaviour matrix: $(ls "$out"/*.rc | wc -l) runs in $out"
