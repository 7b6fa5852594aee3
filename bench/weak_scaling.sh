#!/usr/bin/env bash
# Weak scaling over MPI ranks (issue 17): the same elements per rank, P = 1, 2, ... ranks.
#   bench/weak_scaling.sh CLOPT [ELEMENTS_PER_RANK] [ITERATIONS] [RANKS...]
# Prints, per optimizer and P: n, element-iterations per second (n x iterations per second
# of the run) and rank 0's communication time per iteration (the gathers of the loss
# partials, the stop agreement, halos; waiting for a slower rank counts too), from the
# --json summary. On a machine with fewer cores than ranks x PoCL's threads the ranks share
# the cores, so this measures the overhead of the ranks, not a speed-up.
# WEAK_SCALING_ARGS adds run options, e.g. the two-stage fold whose groups the ranks own
# (only the groups' pairs cross ranks): WEAK_SCALING_ARGS="--tune=partials=group,rwg=64".
set -euo pipefail
clopt=$1
per_rank=${2:-1048576}
iters=${3:-200}
shift $(($# < 3 ? $# : 3))
ranks=("$@")
read -r -a extra <<<"${WEAK_SCALING_ARGS:-}"
[ ${#ranks[@]} -gt 0 ] || ranks=(1 2)
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
printf '%-6s %3s %12s %22s %26s\n' optimizer P n "element-iterations/s" "communication s/iteration"
for opt in gd adam; do
  for p in "${ranks[@]}"; do
    n=$((per_rank * p))
    # The first run builds the kernels (program cache); the second is measured.
    for pass in warm measure; do
      if [ "$p" -eq 1 ]; then
        "$clopt" run --dim $n --optimizer $opt --iters $iters --quiet --json "$work/r.json" \
          "${extra[@]}"
      else
        mpirun --oversubscribe -np $p "$clopt" run --dim $n --optimizer $opt --iters $iters \
          --quiet --json "$work/r.json" "${extra[@]}"
      fi
    done
    python3 - "$work/r.json" "$opt" "$p" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
n, its = d["n"], d["iterations"]
rate = n * its / d["seconds"] if d["seconds"] > 0 else float("nan")
comm = d.get("communication_seconds", 0.0) / its if its else float("nan")
print(f"{sys.argv[2]:<6} {sys.argv[3]:>3} {n:>12} {rate:>22.4g} {comm:>26.3g}")
EOF
  done
done
