#!/usr/bin/env bash
# Makes one folder (and a .tar.gz of it) that runs clopt's GPU check on a machine with a GPU
# and its vendor's OpenCL driver but without network, compilers or Debian packages:
#
#   scripts/gpu_bundle.sh [OUT]        # default OUT: build/gpu-bundle
#   copy OUT/clopt-gpu.tar.gz to the GPU machine, then there:
#   tar xzf clopt-gpu.tar.gz && clopt-gpu/gpu-check.sh [--quick] [--report FILE]
#
# The folder holds the CLI, the Criterion test programs, the benchmark, the kernels and
# examples they read, every shared library they load that is not part of glibc (the OpenCL
# ICD loader included), and glibc itself in lib/glibc/, which gpu-check.sh uses only when
# the machine's glibc is older than the one these programs were linked against.
# The test programs were built with their paths fixed at /tmp/clopt-gpu (CLOPT_TEST_EXE and
# CLOPT_TEST_SOURCE_DIR); gpu-check.sh makes that directory point at the folder. Needs
# patchelf (installed from Debian when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-build/gpu-bundle}
fixed=/tmp/clopt-gpu
build=build/gpu-bundle-build
scripts/deps.sh
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DCLOPT_BUILD_TESTS=ON -DCLOPT_BUILD_BENCH=ON \
  -DCLOPT_TEST_EXE="$fixed/bin/clopt" -DCLOPT_TEST_SOURCE_DIR="$fixed/src" \
  -DCLOPT_TEST_EXAMPLE_LOGREG="$fixed/bin/example_logreg" >/dev/null
cmake --build "$build" -j"$(nproc)"

rm -rf "$out/clopt-gpu"
root=$out/clopt-gpu
mkdir -p "$root/bin" "$root/lib/glibc" "$root/src"
cp "$build/clopt" "$root/bin/"
cp "$build"/test_* "$build/example_logreg" "$root/bin/"
[ -x "$build/clopt_bench_step" ] && cp "$build/clopt_bench_step" "$root/bin/"
cp -r kernels examples README.md "$root/src/"
cp scripts/gpu-check.sh "$root/"

# Shared libraries: glibc's own go to lib/glibc (used only as a fallback), the rest to lib/.
glibc_re='^(libc|libm|libpthread|libdl|librt|libresolv|libutil|ld-linux-x86-64)\.so'
for exe in "$root"/bin/*; do
  ldd "$exe" | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\/.*ld-linux/ {print $1}'
done | sort -u | while read -r lib; do
  name=$(basename "$lib")
  if [[ $name =~ $glibc_re ]]; then
    cp -L "$lib" "$root/lib/glibc/$name"
  else
    cp -L "$lib" "$root/lib/$name"
  fi
done

# The same programs for a machine whose glibc is older than ours: they load the bundled glibc
# through its own loader (a wrapper that runs ld.so would confuse Criterion, which re-executes
# /proc/self/exe), with RPATH (not RUNPATH) so that libraries' own dependencies are found too.
command -v patchelf >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq patchelf >/dev/null
mkdir -p "$root/bin-oldglibc"
for exe in "$root"/bin/*; do
  copy=$root/bin-oldglibc/$(basename "$exe")
  cp "$exe" "$copy"
  patchelf --set-interpreter "$fixed/glibc/ld-linux-x86-64.so.2" --force-rpath \
    --set-rpath "$fixed/glibc:$fixed/lib" "$copy"
done

# The newest glibc symbol version any program needs: gpu-check.sh compares it with the
# machine's glibc to decide whether the bundled one is needed.
need=$(for exe in "$root"/bin/* "$root"/lib/*.so*; do
         objdump -T "$exe" 2>/dev/null | grep -o 'GLIBC_[0-9.]*'
       done | sed 's/GLIBC_//' | sort -V | tail -1)
{
  echo "clopt_version=$("$build/clopt" --version | awk '{print $NF}')"
  echo "git_commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
  echo "built_on=$(. /etc/os-release && echo "$PRETTY_NAME"), $(uname -m)"
  echo "glibc_needed=$need"
  echo "glibc_bundled=$(ldd --version | head -1 | awk '{print $NF}')"
} >"$root/MANIFEST"

size=$(du -sm "$root" | cut -f1)
tar -C "$out" -czf "$out/clopt-gpu.tar.gz" clopt-gpu
packed=$(du -m "$out/clopt-gpu.tar.gz" | cut -f1)
echo "clopt: GPU bundle in $root ($size MiB; packed $packed MiB: $out/clopt-gpu.tar.gz)"
if [ "$size" -gt 64 ]; then
  echo "clopt: the bundle is over 64 MiB; strip it (strip $root/bin/* $root/lib/*.so*)" >&2
  exit 1
fi
