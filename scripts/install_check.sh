#!/usr/bin/env bash
# Installs clopt to a temporary prefix and builds a small consumer program against it the
# ways users embed a library: pkg-config, find_package(clopt), and add_subdirectory of the
# source tree; runs each, and checks what the prefix holds.
#   scripts/install_check.sh [BUILD_DIR]   (default build/install-check)
set -euo pipefail
cd "$(dirname "$0")/.."
src=$PWD
build=${1:-build/install-check}
prefix=$(mktemp -d)
trap 'rm -rf "$prefix"' EXIT
rm -rf "$build"
cmake -S . -B "$build/clopt" -DCMAKE_BUILD_TYPE=Release -DCLOPT_WERROR=ON \
  -DCLOPT_BUILD_TESTS=OFF -DCLOPT_BUILD_BENCH=OFF -DCMAKE_INSTALL_PREFIX="$prefix" >/dev/null
cmake --build "$build/clopt" -j"$(nproc)" >/dev/null
cmake --install "$build/clopt" >/dev/null

libdir=$(cd "$prefix" && ls -d lib*/ | head -1)
libdir=${libdir%/}
for f in include/clopt.h include/clopt_external.h include/clopt_files.h include/clopt_tune.h \
  bin/clopt share/man/man1/clopt.1 "$libdir/libclopt.a" \
  "$libdir/pkgconfig/clopt.pc" "$libdir/cmake/clopt/cloptConfig.cmake" \
  "$libdir/cmake/clopt/cloptConfigVersion.cmake"; do
  [ -e "$prefix/$f" ] || { echo "install-check: $f was not installed" >&2; exit 1; }
done
soname=$(objdump -p "$prefix/$libdir/libclopt.so" | awk '/SONAME/ {print $2}')
[ "$soname" = "libclopt.so.0" ] || { echo "install-check: SONAME is '$soname'" >&2; exit 1; }
# Only the API is exported: every dynamic symbol starts with clopt_.
leaked=$(nm -D --defined-only "$prefix/$libdir/libclopt.so" | awk '$2 ~ /[TDBR]/ {print $3}' |
  grep -v '^clopt_' || true)
[ -z "$leaked" ] || { echo "install-check: internal symbols exported: $leaked" >&2; exit 1; }
"$prefix/bin/clopt" --version >/dev/null

export PKG_CONFIG_PATH="$prefix/$libdir/pkgconfig"
mkdir -p "$build/pkg-config"
# shellcheck disable=SC2046
cc -std=gnu11 -Wall -Wextra -Werror tests/consumer/consumer.c -o "$build/pkg-config/consumer" \
  $(pkg-config --cflags clopt) $(pkg-config --libs clopt) -lm -Wl,-rpath,"$prefix/$libdir"
"$build/pkg-config/consumer"
# examples/logreg.c uses only the installed header and library, and OpenCL directly.
# shellcheck disable=SC2046
cc -std=gnu11 -Wall -Wextra -Werror examples/logreg.c -o "$build/pkg-config/logreg" \
  $(pkg-config --cflags --libs clopt OpenCL) -lm -Wl,-rpath,"$prefix/$libdir"
"$build/pkg-config/logreg" >/dev/null
mkdir -p "$build/static"
# shellcheck disable=SC2046
cc -std=gnu11 -Wall -Wextra -Werror tests/consumer/consumer.c -o "$build/static/consumer" \
  $(pkg-config --cflags clopt) "$prefix/$libdir/libclopt.a" $(pkg-config --libs-only-l --static clopt | sed 's/-lclopt//') -lm
"$build/static/consumer"

# `cmake --install --prefix P`, as the README shows it, to a prefix the build was not
# configured with: the installed clopt.pc must point into P.
moved=$(mktemp -d)
trap 'rm -rf "$prefix" "$moved"' EXIT
cmake --install "$build/clopt" --prefix "$moved" >/dev/null
cflags=$(PKG_CONFIG_PATH="$moved/$libdir/pkgconfig" pkg-config --cflags clopt)
case $cflags in
  *"$moved"/*include*) ;;
  *) echo "install-check: clopt.pc installed in $moved gives '$cflags', not its include dir" >&2
     exit 1 ;;
esac
mkdir -p "$build/moved"
# shellcheck disable=SC2046
cc -std=gnu11 -Wall -Wextra -Werror tests/consumer/consumer.c -o "$build/moved/consumer" \
  $(PKG_CONFIG_PATH="$moved/$libdir/pkgconfig" pkg-config --cflags --libs clopt) -lm \
  -Wl,-rpath,"$moved/$libdir"
"$build/moved/consumer"

cmake -S tests/consumer -B "$build/package" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$build/package" >/dev/null
"$build/package/consumer"

cmake -S tests/consumer -B "$build/subdirectory" -DCLOPT_CONSUMER_MODE=subdirectory \
  -DCLOPT_SOURCE="$src" >/dev/null
cmake --build "$build/subdirectory" -j"$(nproc)" --target consumer >/dev/null
"$build/subdirectory/consumer"
echo "install-check: 5 consumers (pkg-config shared and static, pkg-config after cmake --install --prefix, find_package, add_subdirectory) and examples/logreg.c passed"
