#!/usr/bin/env bash
# Runs every kernel family of clopt under oclgrind (a simulated OpenCL device that checks
# each memory access) at tiny sizes, with data-race, uninitialised-value and API checks,
# and fails on any report that tests/oclgrind/allow.txt does not list.
#   scripts/oclgrind_check.sh [CLOPT_BINARY]      (default build/test/clopt)
# Families: each update rule (and lbfgs, cg); each objective kind (separable, with a data vector, 1-D
# stencils of radius 1, user files); single and fused steps; contiguous and strided layouts;
# per-item and per-group partials; float and double; the reduction (one and many work-items);
# theta_0 (normal, uniform, const); the gradient check kernel; several shards with halos.
# The knobs make tiles small and leave the last tile part-empty, so lanes past n run.
# The host recognises oclgrind's platform and drops `restrict` (CLOPT_NO_RESTRICT), which
# oclgrind cannot run.
set -euo pipefail
cd "$(dirname "$0")/.."
clopt=$(realpath "${1:-build/test/clopt}")
allow=tests/oclgrind/allow.txt
command -v oclgrind >/dev/null || {
  echo "oclgrind_check: oclgrind is not installed (scripts/deps.sh installs it)" >&2
  exit 1
}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export CLOPT_TUNING_DB="$work/none.json" XDG_CACHE_HOME="$work/cache"
start=$SECONDS

# The data vector of shifted_sphere: 300 doubles; 301, 315, 65 and 77 for the grids (7 x 43,
# 3 x 7 x 15, 5 x 13, 7 x 11); 256 for a 16 x 16 grid.
python3 - "$work/target.npy" "$work/grid256.npy" "$work/grid301.npy" "$work/grid315.npy" \
  "$work/grid65.npy" "$work/grid77.npy" <<'PY'
import struct, sys
for path, n in zip(sys.argv[1:], (300, 256, 301, 315, 65, 77)):
    header = "{'descr': '<f8', 'fortran_order': False, 'shape': (%d,), }" % n
    header += " " * (64 - (10 + len(header) + 1) % 64) + "\n"
    with open(path, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode())
        f.write(b"".join(struct.pack("<d", 0.25 + 0.001 * i) for i in range(n)))
PY

# Reports come as blocks separated by blank lines; each becomes one line
# "message | Kernel: NAME | At line N of FILE" for the allow-list to match.
summarise() { # log file (oclgrind writes one only when it has something to say)
  [ -f "$1" ] || return 0
  awk 'BEGIN { RS = ""; FS = "\n" }
       { msg = $1; kernel = ""; at = "";
         for (i = 2; i <= NF; ++i) {
           if ($i ~ /^\tKernel:/) kernel = substr($i, 2)
           if ($i ~ /^\tAt line/) { at = substr($i, 2); sub(/:$/, "", at) }
         }
         sub(/ address 0x[0-9a-f]+/, "", msg)
         print msg " | " kernel " | " at }' "$1"
}
allowed_patterns() {
  grep -vE '^[[:space:]]*(#|$)' "$allow" || true
}

failures=0
cases=0
check_log() { # name, log file, exit status, expected status
  local name=$1 log=$2 rc=$3 want=$4 reports
  cases=$((cases + 1))
  reports=$(summarise "$log" | sort | uniq -c)
  local patterns
  patterns=$(allowed_patterns)
  if [ -n "$patterns" ] && [ -n "$reports" ]; then
    reports=$(grep -vE -f <(printf '%s\n' "$patterns") <<<"$reports" || true)
  fi
  if [ "$rc" != "$want" ] || [ -n "$reports" ]; then
    failures=$((failures + 1))
    echo "oclgrind_check: $name: exit $rc (expected $want)" >&2
    [ -z "$reports" ] || printf '%s\n' "$reports" | sed 's/^/    /' >&2
    sed 's/^/    | /' "$work/$name.err" | tail -5 >&2
  fi
}

checks=(--data-races --uninitialized --check-api)
under_oclgrind() { # name, expected exit status, command...
  local name=$1 want=$2 rc=0
  shift 2
  oclgrind "${checks[@]}" --log "$work/$name.log" "$@" >"$work/$name.out" \
    2>"$work/$name.err" || rc=$?
  check_log "$name" "$work/$name.log" "$rc" "$want"
}

run_case() { # name, clopt run arguments...
  local name=$1
  shift
  under_oclgrind "$name" 0 "$clopt" run --quiet --program-cache off --iters 2 \
    --out "$work/$name.npy" "$@"
}

# Fused runs of stateless update rules meet oclgrind 21.10's missing `freeze` in its
# --uninitialized plugin (tests/oclgrind/freeze.cl): the optimised kernel is checked for
# races, bounds and API errors, and the unoptimised one (no `freeze`) for uninitialised
# values as well.
run_case_split() { # name, clopt run arguments...
  local name=$1
  shift
  checks=(--data-races --check-api)
  run_case "$name" "$@"
  checks=(--data-races --uninitialized --check-api --build-options -cl-opt-disable)
  run_case "$name-O0" "$@"
  checks=(--data-races --uninitialized --check-api)
}

# Knob sets. GPU-shaped: strided layout, one partial per work-group, a reduction tree of 16
# work-items. CPU-shaped: contiguous chunks, one partial per work-item, blocks of 4 loss
# terms. Both make tiles of 128 elements, so 300 elements leave a part-filled last tile.
gpu=layout=strided,partials=group,wg=16,epw=8,vw=4,rwg=16
cpu=layout=contig,partials=item,wg=8,epw=16,vw=4,fblock=4,rwg=4
small="--dim 300"

# Every update rule, each in both knob sets and both precisions.
for optimizer in gd momentum nesterov adam adamw rmsprop adagrad; do
  run_case "$optimizer-gpu-float" $small --optimizer "$optimizer" --tune "$gpu"
  run_case "$optimizer-cpu-double" $small --optimizer "$optimizer" --tune "$cpu" \
    --precision double
done
# oclgrind's device says it is a GPU: the CPU-shaped knobs get one warning line (issue 17).
if [ "$(grep -c 'shaped for CPUs' "$work/gd-cpu-double.err")" != 1 ]; then
  echo "oclgrind_check: gd-cpu-double: expected one warning line about CPU-shaped knobs" >&2
  failures=$((failures + 1))
fi
# Update rule variants: weight decay (L2 and decoupled), AMSGrad, Nesterov momentum,
# clipping, ascent.
run_case adam-amsgrad-wd $small --optimizer adam --amsgrad --weight-decay 0.01 --tune "$gpu"
run_case adamw-wd-cpu $small --optimizer adamw --weight-decay 0.01 --tune "$cpu"
run_case gd-wd-clip-value $small --optimizer gd --weight-decay 0.01 --clip-value 0.5 \
  --tune "$cpu"
run_case momentum-clip-norm $small --optimizer momentum --clip-norm 1 --tune "$gpu"
run_case rmsprop-maximize $small --optimizer rmsprop --maximize --objective double_well \
  --init uniform:0.5 --tune "$cpu"
# Objective kinds: separable built-ins, a data vector, 1-D stencils, user files.
run_case ellipsoid-gpu $small --objective ellipsoid --param cond=100 --lr 0.004 --tune "$gpu"
# The CPU-shaped knobs take ellipsoid's block form (blocks of 16 elements, one group each);
# blocks of 64 (four groups) take their group factors from every lane of the block vector.
run_case ellipsoid-cpu $small --objective ellipsoid --param cond=100 --lr 0.004 --tune "$cpu"
run_case ellipsoid-cpu-blocks $small --objective ellipsoid --param cond=100 --lr 0.004 \
  --tune layout=contig,partials=item,wg=4,epw=64,vw=4,fblock=16,rwg=4
run_case ellipsoid-cpu-double $small --objective ellipsoid --param cond=100 --lr 0.004 \
  --tune "$cpu" --precision double
run_case rastrigin-cpu $small --objective rastrigin --init uniform:0.5 --lr 1e-3 --tune "$cpu"
run_case styblinski-gpu-double $small --objective styblinski_tang --init uniform:0.5 \
  --lr 0.01 --tune "$gpu" --precision double
for knobs in gpu cpu; do
  run_case "shifted-sphere-$knobs" $small --objective shifted_sphere \
    --param target="$work/target.npy" --optimizer adam --tune "${!knobs}"
  run_case "rosenbrock-$knobs" $small --objective rosenbrock --init uniform:0.5 --lr 1e-3 \
    --optimizer momentum --tune "${!knobs}"
done
run_case laplacian-gpu-double $small --objective laplacian --optimizer adagrad --tune "$gpu" \
  --precision double
run_case user-separable $small --objective examples/quartic.cl --tune "$gpu"
run_case user-stencil $small --objective examples/smooth_step.cl --tune "$cpu"
# Several shards (tiles of 128 floats, shards of one tile), with the stencil's halos
# exchanged between them.
run_case shards-adam-gpu $small --optimizer adam --max-shard-bytes 512 --tune "$gpu"
# The halo exchange copies between buffers (clEnqueueCopyBuffer), which oclgrind's
# uninitialised-value tracking cannot follow (tests/oclgrind/host_store_shadow.c, mode
# copy): this run is checked for races, bounds and API errors only; one-shard stencils
# above get every check.
checks=(--data-races --check-api)
run_case shards-rosenbrock-cpu $small --objective rosenbrock --init uniform:0.5 --lr 1e-3 \
  --max-shard-bytes 520 --tune "$cpu"
checks=(--data-races --uninitialized --check-api)
# Grids: groups of 4 points away from the faces take the vectorised sweep (box offsets as
# vector loads), the others the checked one; a 2-D and a 3-D grid with last axes longer
# than 4 + 2, whose sizes (301, 315) leave the last chunk a part-filled group of 4 (taken
# lane by lane, the lanes past the end left alone). The coordinates' division meets
# oclgrind's missing `freeze` as the fused runs do (run_case_split). Then a 16 x 16 grid in
# 4 shards of one tile (4 rows) with halos of one row (races, bounds and API only, as for the
# shards above). Shards that
# start inside a row are left out: the scalar gather reads the far corners of the boxes next
# to a shard's ends past its halos (unused by poisson and tv_denoise; see the notes).
run_case_split grid-poisson-cpu --shape 7,43 --objective poisson \
  --param source="$work/grid301.npy" --tune "$cpu"
run_case_split grid-tv-adam-cpu-double --shape 3,7,15 --objective tv_denoise \
  --param image="$work/grid315.npy" --optimizer adam --tune "$cpu" --precision double
# Last chunks shorter than a block: 65 points in chunks of 64 leave one point (no whole
# group; the empty blocks fold Kahan zeros), 77 leave 13 with one loss term per block.
run_case_split grid-poisson-kahan-cpu --shape 5,13 --objective poisson \
  --param source="$work/grid65.npy" --tune "$cpu,epw=64,acc=kahan"
run_case_split grid-poisson-fblock1-cpu --shape 7,11 --objective poisson \
  --param source="$work/grid77.npy" --tune "$cpu,epw=64,fblock=1"
checks=(--data-races --check-api)
run_case grid-poisson-shards-cpu --shape 16,16 --objective poisson \
  --param source="$work/grid256.npy" --max-shard-bytes $(((64 + 2 * 17) * 4)) \
  --tune layout=contig,partials=item,wg=4,epw=16,vw=4,fblock=4,rwg=4
checks=(--data-races --uninitialized --check-api)
# Fused steps: stateless (pairs of iterations per sweep) and stateful rules, a data vector,
# losses on some iterations of a block only, and a block that ends the run early.
run_case_split fused-gd-gpu $small --optimizer gd --iters 4 --tune "$gpu,fuse=4"
run_case_split fused-gd-loss-every-cpu $small --optimizer gd --iters 8 --loss-every 3 \
  --tune "$cpu,fuse=4"
run_case fused-adam-cpu $small --optimizer adam --iters 8 --tune "$cpu,fuse=4" \
  --precision double
run_case fused-momentum-loss-every $small --optimizer momentum --iters 7 --loss-every 3 \
  --tune "$gpu,fuse=4"
run_case fused-shifted-sphere $small --objective shifted_sphere \
  --param target="$work/target.npy" --optimizer rmsprop --iters 4 --tune "$cpu,fuse=2"
# Loss masks 0 and 1 on whole chunks go group by group (clopt_sweep_direct), on CPU devices
# only: oclgrind's device says GPU too, so the build options switch the path on.
direct=-DCLOPT_FUSE_DIRECT=1
checks=(--data-races --check-api --build-options "$direct")
run_case fused-gd-direct $small --optimizer gd --iters 8 --loss-every 8 --tune "$cpu,fuse=4"
checks=(--data-races --uninitialized --check-api --build-options "-cl-opt-disable $direct")
run_case fused-gd-direct-O0 $small --optimizer gd --iters 8 --loss-every 8 --tune "$cpu,fuse=4"
checks=(--data-races --uninitialized --check-api --build-options "$direct")
run_case fused-adam-direct $small --optimizer adam --iters 8 --loss-every 4 --tune "$cpu,fuse=4"
checks=(--data-races --uninitialized --check-api)
# lbfgs and cg: their evaluation, dot-product and direction kernels, on several shards too.
run_case lbfgs-shards-gpu $small --optimizer lbfgs --iters 3 --max-shard-bytes 512 --tune "$gpu"
run_case cg-cpu-double $small --optimizer cg --iters 3 --tune "$cpu" --precision double
# A stencil's trial point is copied into theta past its halo (clEnqueueCopyBuffer at an
# offset), which oclgrind's uninitialised-value tracking cannot follow (as for the shards
# above): races, bounds and API errors only.
checks=(--data-races --check-api)
run_case lbfgs-rosenbrock-gpu $small --optimizer lbfgs --objective rosenbrock --init uniform:0.5 \
  --iters 3 --tune "$gpu"
checks=(--data-races --uninitialized --check-api)
# Tiles of 1024 elements: the dot-product and combine kernels' whole 256-element blocks
# (vector loads) and a part-filled last block, on two shards.
run_case lbfgs-blocks-double --dim 1500 --optimizer lbfgs --iters 3 --tune wg=4,epw=256 \
  --precision double --max-shard-bytes 8192
# Other knobs: a fixed grid of groups striding over tiles, Kahan float accumulation, one
# reduction work-item, loss terms added one at a time.
run_case gpcu-gpu $small --optimizer nesterov --tune "$gpu,gpcu=1"
run_case kahan-cpu $small --optimizer adagrad --tune "$cpu,acc=kahan,rwg=1,fblock=1"
# The two-stage reduction (500 partials: 16 groups of 4 work-items, then one group), and
# every launch that grows with n cut into chunks of 256 work-items (CLOPT_MAX_LAUNCH_ITEMS:
# theta_0, the zeroed state and partials, and the step kernels placed by global offsets).
run_case reduce-two-stage --dim 2000 --optimizer adam \
  --tune layout=strided,partials=item,wg=4,epw=4,vw=4,rwg=4
CLOPT_MAX_LAUNCH_ITEMS=256 run_case launch-chunks --dim 2000 --optimizer adam \
  --tune layout=contig,partials=item,wg=4,epw=2,vw=2,fblock=1,rwg=1
CLOPT_MAX_LAUNCH_ITEMS=256 run_case_split launch-chunks-fused --dim 2000 --optimizer gd \
  --iters 4 --tune layout=strided,partials=group,wg=4,epw=2,vw=2,fblock=1,rwg=4,fuse=2
# theta_0: uniform and const (normal is every other case's default).
run_case init-uniform-double $small --init uniform:2 --precision double --tune "$gpu"
run_case init-const $small --init const:0.5 --tune "$cpu"
# The gradient check kernel: separable, data vector, stencil, user file.
for objective in sphere rosenbrock examples/quartic.cl examples/smooth_step.cl; do
  under_oclgrind "check-${objective//\//-}" 0 "$clopt" check --program-cache off --dim 300 \
    --samples 20 --objective "$objective"
done
under_oclgrind check-shifted-sphere 0 "$clopt" check --program-cache off --dim 300 --samples 20 \
  --objective shifted_sphere --param target="$work/target.npy"

# The detector itself works: a minimal program whose buffer oclgrind cannot follow must be
# reported, the same program with one whole-buffer write must not (see
# tests/oclgrind/host_store_shadow.c).
cc -std=c11 -O1 -o "$work/host_store_shadow" tests/oclgrind/host_store_shadow.c -lOpenCL
oclgrind --uninitialized --log "$work/control-fill1.log" "$work/host_store_shadow" \
  tests/oclgrind/host_store_shadow.cl fill1 >/dev/null
if ! grep -q "Uninitialized value" "$work/control-fill1.log"; then
  echo "oclgrind_check: oclgrind reported nothing on the control program: is --uninitialized working?" >&2
  failures=$((failures + 1))
fi
under_oclgrind control-whole 0 "$work/host_store_shadow" tests/oclgrind/host_store_shadow.cl whole

elapsed=$((SECONDS - start))
if [ "$failures" -ne 0 ]; then
  echo "oclgrind_check: $failures of $cases runs failed ($elapsed s)" >&2
  exit 1
fi
echo "oclgrind_check: $cases runs clean under oclgrind ($elapsed s)"
