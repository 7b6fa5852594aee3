#!/usr/bin/env bash
# Weak scaling over the devices of one process: n elements per device, on 1 device and on
# D devices (--devices 0..D-1, n x D elements), for each optimizer; prints element-iterations
# per second (the median of REPS runs' n x iterations / loop seconds) and the efficiency
# (rate on D devices / (D x rate on 1)).
#   bench/devices_scaling.sh CLOPT [N_PER_DEVICE] [ITERS] [REPS] [D]
# On PoCL, POCL_DEVICES="pthread pthread" makes two CPU devices; both then share the same
# cores, so the figure measures the cost of the split (partials gathered, halos copied,
# one queue each), not added hardware. Theta is checked bit-identical between the two.
set -euo pipefail
clopt=$(realpath "$1")
n=${2:-4194304}
iters=${3:-200}
reps=${4:-3}
devices=${5:-2}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export POCL_DEVICES=${POCL_DEVICES:-$(printf 'pthread %.0s' $(seq "$devices"))}
export CLOPT_TUNING_DB="$work/none.json"
list=$(seq -s, 0 $((devices - 1)))

rate() { # json: element-iterations per second of one run
    python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print(j["n"]*j["iterations"]/j["seconds"])' "$1"
}

median() { sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }

printf '%-10s %14s %16s %16s %10s %s\n' optimizer n/device "1 device" "$devices devices" efficiency theta
for opt in gd adam; do
    for d in 1 "$devices"; do
        dim=$((n * d))
        extra=()
        [ "$d" -gt 1 ] && extra=(--devices "$list")
        for r in $(seq "$reps"); do
            "$clopt" run --dim "$dim" --optimizer "$opt" --iters "$iters" --quiet \
                --json "$work/$opt-$d-$r.json" "${extra[@]}"
            rate "$work/$opt-$d-$r.json"
        done | median > "$work/$opt-$d.rate"
    done
    # theta at n x D elements on one device and on D devices.
    "$clopt" run --dim $((n * devices)) --optimizer "$opt" --iters 20 --quiet --out "$work/a.npy"
    "$clopt" run --dim $((n * devices)) --optimizer "$opt" --iters 20 --quiet --out "$work/b.npy" \
        --devices "$list"
    same=$(cmp -s "$work/a.npy" "$work/b.npy" && echo bit-identical || echo DIFFERS)
    one=$(cat "$work/$opt-1.rate")
    many=$(cat "$work/$opt-$devices.rate")
    eff=$(python3 -c "print('%.2f' % ($many / ($devices * $one)))")
    printf '%-10s %14d %16.4g %16.4g %10s %s\n' "$opt" "$n" "$one" "$many" "$eff" "$same"
done
