#!/usr/bin/env bash
# Installs what is missing, builds clopt, and runs the default job (sphere, gradient descent,
# on the first GPU, else PoCL on the CPU). Extra arguments go to `clopt run`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cmake -S . -B build/run -DCMAKE_BUILD_TYPE=Release -DCLOPT_BUILD_TESTS=OFF >/dev/null
cmake --build build/run -j"$(nproc)" --target clopt >/dev/null
./build/run/clopt devices
exec ./build/run/clopt run "$@"
