#!/usr/bin/env bash
# clopt's check on a GPU machine, run from the folder scripts/gpu_bundle.sh makes (it needs no
# compiler, network or package there: only the GPU's OpenCL driver and a shell with coreutils):
#
#   clopt-gpu/gpu-check.sh [--quick] [--device INDEX|NAME] [--report FILE]
#
# It finds the vendor's OpenCL library (an ICD file of its own through OCL_ICD_VENDORS when
# the machine has none), then runs: the test suite with the GPU as the device, clopt bench at
# n = 1e8 and 1e9 for gd and adam (single and fused), the bit-identity of fused steps and of
# the CPU-shaped knobs against the GPU defaults, clopt tune with a short budget, and a run past
# the device's largest allocation (several shards). Everything goes to one report file; the
# last section sums it up. --quick runs three test programs and n = 1e8 only (~5 minutes).
# Exit status: 0 when every section passed, 1 otherwise.
# To try the script itself on a machine without a GPU (PoCL), three variables shrink it:
# CLOPT_GPU_CHECK_TESTS (test program names, e.g. "test_npy"), CLOPT_GPU_CHECK_SIZES (e.g.
# "1e5") and CLOPT_GPU_CHECK_BUNDLED_GLIBC=1 (use the bundled glibc even where it is not needed).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
quick=0 device="" report=""
while [ $# -gt 0 ]; do
  case $1 in
    --quick) quick=1 ;;
    --device) device=$2; shift ;;
    --report) report=$2; shift ;;
    -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "gpu-check.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done
[ -n "$report" ] || report=$PWD/gpu-report-$(hostname)-$(date +%Y%m%dT%H%M%S).txt
work=$(mktemp -d /tmp/clopt-gpu-work.XXXXXX)
trap 'rm -rf "$work"' EXIT
failures=()

log() { printf '%s\n' "$*" | tee -a "$report"; }
section() { log ""; log "=== $* ==="; }
# Runs a command with a time limit, its output appended to the report; returns its status.
record() {
  local limit=$1; shift
  log "\$ $*"
  timeout "$limit" "$@" >>"$report" 2>&1
  local rc=$?
  [ $rc -eq 124 ] && log "(stopped after $limit s)"
  return $rc
}
fail() { failures+=("$1"); log "FAILED: $1"; }

: >"$report"
section "machine"
log "date: $(date -u +%FT%TZ)"
log "host: $(uname -a)"
cat "$here/MANIFEST" >>"$report"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version \
  --format=csv >>"$report" 2>&1
command -v rocm-smi >/dev/null && rocm-smi --showproductname >>"$report" 2>&1

# --- the vendor's OpenCL library -----------------------------------------------------------
section "OpenCL driver"
if ls /etc/OpenCL/vendors/*.icd >/dev/null 2>&1 && [ -z "${OCL_ICD_VENDORS:-}" ]; then
  log "ICD files: $(cat /etc/OpenCL/vendors/*.icd | tr '\n' ' ')"
else
  mkdir -p "$work/vendors"
  for name in libnvidia-opencl.so.1 libamdocl64.so; do
    path=$(ldconfig -p 2>/dev/null | awk -v n="$name" '$1 == n {print $NF; exit}')
    for dir in /usr/lib/x86_64-linux-gnu /usr/lib64 /usr/lib /usr/local/nvidia/lib64 \
               /usr/local/cuda/lib64 /opt/rocm/lib /opt/rocm/opencl/lib; do
      [ -z "$path" ] && [ -e "$dir/$name" ] && path=$dir/$name
    done
    if [ -n "$path" ]; then
      echo "$path" >"$work/vendors/${name%%.so*}.icd"
      log "ICD file of our own for $path"
    fi
  done
  export OCL_ICD_VENDORS=$work/vendors
fi

# --- programs at the fixed path the tests were built with ----------------------------------
fixed=/tmp/clopt-gpu
rm -rf "$fixed"
mkdir -p "$fixed"
ln -s "$here/src" "$fixed/src"
ln -s "$here/lib" "$fixed/lib"
ln -s "$here/lib/glibc" "$fixed/glibc"
need=$(sed -n 's/^glibc_needed=//p' "$here/MANIFEST")
have=$(getconf GNU_LIBC_VERSION 2>/dev/null | awk '{print $2}')
older() { [ -n "$need" ] && [ "$(printf '%s\n%s\n' "$need" "${have:-0}" | sort -V | head -1)" != "$need" ]; }
if older || [ "${CLOPT_GPU_CHECK_BUNDLED_GLIBC:-0}" = 1 ]; then
  # Programs that load the bundled glibc through its own loader (no LD_LIBRARY_PATH: it would
  # also reach the machine's own programs, such as timeout).
  log "glibc ${have:-?}, programs need $need: using the bundled glibc"
  ln -s "$here/bin-oldglibc" "$fixed/bin"
else
  log "glibc ${have:-?} (programs need $need)"
  export LD_LIBRARY_PATH=$here/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  ln -s "$here/bin" "$fixed/bin"
fi
clopt=$fixed/bin/clopt
export CLOPT_PROGRAM_CACHE=$work/programs CLOPT_TUNING_DB=$work/tuning.json

section "devices"
record 60 "$clopt" --version || fail "clopt --version"
record 60 "$clopt" devices || fail "clopt devices"
"$clopt" devices --json >"$work/devices.json" 2>>"$report"
# The first GPU's index, memory and largest allocation (clopt's JSON: one key per line).
gpu=$(awk -F'[:,]' '/"index"/ {i=$2+0} /"global_mem_bytes"/ {m=$2+0} /"max_alloc_bytes"/ {a=$2+0}
                    /"kind"/ {k=$2} /"has_fp64"/ {if (k ~ /GPU/ && !done) {print i, m, a; done=1}}' \
      "$work/devices.json")
if [ -n "$device" ]; then
  export CLOPT_DEVICE=$device
elif [ -n "$gpu" ]; then
  export CLOPT_DEVICE=${gpu%% *}
else
  fail "no GPU among the OpenCL devices (see the list above)"
fi
read -r _ mem_bytes max_alloc <<<"${gpu:-0 0 0}"
log "device: ${CLOPT_DEVICE:-default}; memory $mem_bytes B; largest allocation $max_alloc B"

# --- the test suite ------------------------------------------------------------------------
section "tests (each program with the GPU as the default device)"
tests=("$fixed"/bin/test_*)
[ $quick -eq 1 ] && tests=("$fixed/bin/test_kernels" "$fixed/bin/test_fusion" "$fixed/bin/test_solver")
if [ -n "${CLOPT_GPU_CHECK_TESTS:-}" ]; then
  tests=()
  for t in $CLOPT_GPU_CHECK_TESTS; do tests+=("$fixed/bin/$t"); done
fi
# test_devices runs on devices 0 and 1 (two PoCL devices on CI): only where two GPUs are.
n_gpus=$(grep -c '"kind":[[:space:]]*"GPU"' "$work/devices.json" || true)
for t in "${tests[@]}"; do
  if [ "$(basename "$t")" = test_devices ] && [ "${n_gpus:-0}" -lt 2 ]; then
    log "test_devices skipped: it needs two devices of one model, this machine has $n_gpus GPU(s)"
    continue
  fi
  before=$(wc -l <"$report")
  (cd "$work" && record 900 "$t" -j1 --verbose=0) || fail "$(basename "$t")"
  # A program that ran no test (it could not start its workers) has not passed either.
  tail -n +"$((before + 1))" "$report" | grep -q 'Synthesis: Tested: [1-9]' \
    || fail "$(basename "$t"): no test ran"
done

# --- bandwidth ------------------------------------------------------------------------------
section "bench (ratio_to_scale: achieved GB/s over the in-place scale measured just before)"
sizes=(1e8 1e9)
[ $quick -eq 1 ] && sizes=(1e8)
[ -n "${CLOPT_GPU_CHECK_SIZES:-}" ] && read -r -a sizes <<<"$CLOPT_GPU_CHECK_SIZES"
for n in "${sizes[@]}"; do
  for opt in gd adam; do
    for fuse in 1 8; do
      record 300 "$clopt" bench --dim "$n" --optimizer "$opt" --tune "fuse=$fuse" \
        --loss-every "$fuse" --reps 5 --csv - || fail "bench $n $opt fuse=$fuse"
    done
  done
done

# --- bit identity across code shapes (FMA contraction may differ per shape on GPUs) ---------
section "identity: fused steps and CPU-shaped knobs against the GPU defaults"
base=(run --dim 1000003 --optimizer adam --iters 16 --quiet)
record 300 "$clopt" "${base[@]}" --out "$work/default.npy" || fail "identity: default run"
record 300 "$clopt" "${base[@]}" --tune fuse=8 --loss-every 8 --out "$work/fused.npy" \
  || fail "identity: fused run"
record 300 "$clopt" "${base[@]}" --tune layout=contig,partials=item --out "$work/contig.npy" \
  || fail "identity: contig run"
# Launches cut into chunks of 2^16 work-items (a test hook; the library cuts at 2^30).
CLOPT_MAX_LAUNCH_ITEMS=65536 record 300 "$clopt" "${base[@]}" --out "$work/chunks.npy" \
  || fail "identity: chunked run"
# GD too: its update compiled to FADD + FFMA on sm_90, where contraction could differ.
record 300 "$clopt" "${base[@]/adam/gd}" --out "$work/gd.npy" || fail "identity: gd run"
record 300 "$clopt" "${base[@]/adam/gd}" --tune fuse=8 --loss-every 8 \
  --out "$work/gd-fused.npy" || fail "identity: gd fused run"
if cmp -s "$work/gd.npy" "$work/gd-fused.npy"; then log "gd-fused: bit-identical"
else fail "identity: gd fused differs from gd single steps"; fi
for v in fused contig chunks; do
  if cmp -s "$work/default.npy" "$work/$v.npy"; then log "$v: bit-identical"
  else fail "identity: $v differs from the default knobs"; fi
done

# --- tuner ----------------------------------------------------------------------------------
section "tune (60 s budget)"
record 600 "$clopt" tune --dim 1e8 --optimizer adam --budget 60 --json - || fail "tune"

# --- past the largest allocation ------------------------------------------------------------
section "a run past the device's largest allocation"
if [ "${max_alloc:-0}" -gt 0 ]; then
  n=$((max_alloc / 4 * 3 / 2))
  if [ $((n * 4)) -lt $((mem_bytes * 3 / 4)) ]; then
    record 600 "$clopt" run --dim "$n" --optimizer gd --iters 20 --json "$work/big.json" \
      || fail "run n=$n past the largest allocation"
    cat "$work/big.json" >>"$report" 2>/dev/null
    grep -q '"shards":[[:space:]]*1,' "$work/big.json" && fail "n=$n ran in one shard"
  else
    log "skipped: 1.5 x the largest allocation does not fit in 3/4 of the memory"
  fi
fi
record 300 "$clopt" run --dim 1e7 --optimizer adam --precision double --iters 50 \
  --max-shard-bytes 8000000 --json - || fail "double run on 10 shards"

section "summary"
if [ ${#failures[@]} -eq 0 ]; then
  log "every section passed"
else
  log "${#failures[@]} failed:"
  for f in "${failures[@]}"; do log "  $f"; done
fi
echo "report: $report"
[ ${#failures[@]} -eq 0 ]
