#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan + UBSan), replays the committed corpus
# (tests/fuzz/corpus: seeds and every past finding), then fuzzes each target for a fixed
# time (CLOPT_FUZZ_SECONDS, default 20). Any crash, leak or sanitizer report fails; the
# input is left in build/fuzz/artifacts: fix the bug, then add the input to the corpus.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${CLOPT_FUZZ_SECONDS:-20}
# libFuzzer's runtime comes in its own package on Debian (libclang-rt-N-dev).
probe=$(mktemp -d)
trap 'rm -rf "$probe"' EXIT
printf '#include <stdint.h>\n#include <stddef.h>\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }\n' \
  >"$probe/probe.c"
if ! clang -fsanitize=fuzzer "$probe/probe.c" -o "$probe/probe" 2>/dev/null; then
  major=$(clang -dumpversion | cut -d. -f1)
  echo "clopt: installing libclang-rt-$major-dev for libFuzzer" >&2
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends \
    "libclang-rt-$major-dev" >/dev/null
fi
rm -rf build/fuzz
CC=clang cmake -S . -B build/fuzz -DCLOPT_FUZZ=ON -DCLOPT_WERROR=ON >/dev/null
cmake --build build/fuzz -j"$(nproc)"
mkdir -p build/fuzz/artifacts
for target in numparse npy checkpoint; do
  corpus=tests/fuzz/corpus/$target
  echo "fuzz_$target: replaying $(ls "$corpus" | wc -l) corpus inputs, then fuzzing ${seconds}s"
  build/fuzz/fuzz_$target -runs=0 "$corpus" 2>build/fuzz/$target-replay.log ||
    { tail -40 build/fuzz/$target-replay.log; exit 1; }
  mkdir -p "build/fuzz/corpus-$target"
  cp "$corpus"/* "build/fuzz/corpus-$target"/
  build/fuzz/fuzz_$target "build/fuzz/corpus-$target" -max_total_time="$seconds" \
    -artifact_prefix="build/fuzz/artifacts/$target-" 2>build/fuzz/$target.log ||
    { tail -40 build/fuzz/$target.log; exit 1; }
  tail -1 build/fuzz/$target.log
done
