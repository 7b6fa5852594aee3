#!/usr/bin/env bash
# Installs what is missing, then builds from scratch and runs every test twice: a release
# build with warnings as errors, and an AddressSanitizer + UBSan build that also runs the
# fault-injection sweep (tests/fault_injection.sh); between them, an install to a temporary
# prefix with programs built against it (scripts/install_check.sh) and the Python package's
# tests (scripts/python_check.sh); then the libFuzzer
# targets (scripts/fuzz.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
jobs=$(nproc)
# Test programs run side by side, one per core: most of the suite's time is PoCL compiling
# kernel variants, on one thread per process.
rm -rf build/test build/sanitize
cmake -S . -B build/test -DCMAKE_BUILD_TYPE=Release -DCLOPT_WERROR=ON >/dev/null
cmake --build build/test -j"$jobs"
ctest --test-dir build/test --output-on-failure -j"$jobs"
# Every kernel family on oclgrind's simulated device: races, bounds, uninitialised values.
scripts/oclgrind_check.sh build/test/clopt
# The installed library as users embed it: pkg-config, find_package, add_subdirectory.
scripts/install_check.sh build/install-check
# The Python package in a venv, against this build's libclopt.so and CLI.
scripts/python_check.sh build/test
cmake -S . -B build/sanitize -DCMAKE_BUILD_TYPE=Debug -DCLOPT_WERROR=ON -DCLOPT_SANITIZE=ON \
  -DCLOPT_FAULT_INJECTION=ON \
  -DCLOPT_BUILD_BENCH=OFF >/dev/null
cmake --build build/sanitize -j"$jobs"
ctest --test-dir build/sanitize --output-on-failure -j"$jobs"
scripts/fuzz.sh
