#!/usr/bin/env bash
# Instructions per element-iteration of the step kernels (clopt_step, clopt_step_loss,
# clopt_step_fused), counted by callgrind: unlike timings, the count does not move with the
# load of a shared machine, so two kernel variants can be compared one after the other.
#   bench/step_instructions.sh CLOPT OBJECTIVE N [RUN OPTIONS...]
# Two runs of ITERS_A and ITERS_B iterations (multiples of 8, so that any fuse <= 8 divides
# them) are counted and subtracted, which removes the set-up, the initialisation and the
# first launch. A run before them, outside valgrind, fills PoCL's kernel cache so that the
# counted runs do not compile. Example (main's kernels against this tree's):
#   bench/step_instructions.sh build/rel/clopt rastrigin 1e6 --kernel-dir /tmp/main/kernels
#   bench/step_instructions.sh build/rel/clopt sphere 1e6 --loss-every 8 --tune fuse=8
set -euo pipefail
if [ $# -lt 3 ]; then
    echo "usage: $0 CLOPT OBJECTIVE N [RUN OPTIONS...]" >&2
    exit 2
fi
command -v valgrind >/dev/null && command -v callgrind_annotate >/dev/null || {
    echo "$0: needs valgrind and callgrind_annotate (apt-get install valgrind)" >&2
    exit 2
}
clopt=$(realpath "$1")
objective=$2
n=$3
shift 3
iters_a=8
iters_b=24
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export OMP_WAIT_POLICY=passive
count() { # callgrind output -> instructions in the step kernels
    callgrind_annotate --threshold=100 "$1" 2>/dev/null |
        awk '/_pocl_kernel_clopt_step/ { gsub(",", "", $1); s += $1 } END { print s + 0 }'
}
"$clopt" run --objective "$objective" --dim "$n" --iters "$iters_a" --init uniform:0.5 \
    --lr 1e-5 --quiet "$@" >/dev/null
for iters in "$iters_a" "$iters_b"; do
    valgrind --tool=callgrind --callgrind-out-file="$work/cg.$iters" "$clopt" run \
        --objective "$objective" --dim "$n" --iters "$iters" --init uniform:0.5 --lr 1e-5 \
        --quiet "$@" >/dev/null 2>"$work/log.$iters" || {
        echo "$0: the run under valgrind failed: $(tail -n 1 "$work/log.$iters")" >&2
        exit 1
    }
done
a=$(count "$work/cg.$iters_a")
b=$(count "$work/cg.$iters_b")
dim=$("$clopt" run --objective "$objective" --dim "$n" --iters 1 --quiet --json - "$@" \
    2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["n"])')
awk -v a="$a" -v b="$b" -v n="$dim" -v d=$((iters_b - iters_a)) -v o="$objective" \
    -v opts="$*" 'BEGIN { printf "%s %s: %.2f instructions per element-iteration\n", o, opts, (b - a) / (n * d) }'
