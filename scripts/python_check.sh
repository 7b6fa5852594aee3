#!/usr/bin/env bash
# Installs the Python package (python/) into a fresh virtual environment and runs its
# tests against a build of libclopt and the clopt CLI.
#
#   bash scripts/python_check.sh [BUILD_DIR]     (default build/test)
#
# BUILD_DIR must hold libclopt.so and clopt (cmake -S . -B BUILD_DIR && cmake --build
# BUILD_DIR). The venv (BUILD_DIR/python-venv) uses the system's site packages, so Debian's
# python3-numpy and python3-pytest serve and nothing comes from PyPI; they (and
# python3-venv) are installed with apt-get when missing, which needs root.
# Environment: PYTHON (default /usr/bin/python3, Debian's, whose packages apt installs),
# PYTEST_ARGS (extra pytest arguments).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${1:-build/test}
case $build in /*) ;; *) build=$root/$build ;; esac
lib=$build/libclopt.so
cli=$build/clopt
venv=$build/python-venv

die() { echo "python_check: $*" >&2; exit 1; }

[ -e "$lib" ] || die "$lib not found: build the library first (cmake -S . -B $build && cmake --build $build)"
[ -x "$cli" ] || die "$cli not found: build the CLI first (cmake --build $build)"

# Debian's interpreter: apt's python3-numpy and python3-pytest are installed for it, not
# for another python3 that may come first in PATH (pyenv, conda).
python=${PYTHON:-}
if [ -z "$python" ]; then
    if [ -x /usr/bin/python3 ]; then python=/usr/bin/python3; else python=$(command -v python3); fi
fi
[ -n "$python" ] || die "no python3 found"

missing=()
"$python" -c 'import venv, ensurepip' 2>/dev/null || missing+=(python3-venv)
"$python" -c 'import numpy' 2>/dev/null || missing+=(python3-numpy)
"$python" -c 'import pytest' 2>/dev/null || missing+=(python3-pytest)
"$python" -c 'import setuptools' 2>/dev/null || missing+=(python3-setuptools)
if [ ${#missing[@]} -gt 0 ]; then
    [ "$(id -u)" = 0 ] || die "missing ${missing[*]} for $python; install them (apt-get install ${missing[*]}) or run as root"
    command -v apt-get >/dev/null || die "missing ${missing[*]} for $python and no apt-get"
    echo "python_check: installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

echo "python_check: venv $venv ($("$python" --version))"
rm -rf "$venv"
"$python" -m venv --system-site-packages "$venv"
vpy=$venv/bin/python

# Offline: no index, and the build backend (setuptools) from the environment, not from an
# isolated build environment that pip would fill from PyPI.
pip_flags=(--no-index --disable-pip-version-check --quiet)
if "$vpy" -c 'import setuptools' 2>/dev/null; then
    pip_flags+=(--no-build-isolation)
else
    die "setuptools is missing in $venv (apt-get install python3-setuptools)"
fi
# Build in a copy so python/ gets no build/ or egg-info droppings.
src=$(mktemp -d)
trap 'rm -rf "$src"' EXIT
cp -r "$root/python/." "$src/"
rm -rf "$src/build" "$src"/*.egg-info
"$vpy" -m pip install "${pip_flags[@]}" "$src"
"$vpy" -m pip show --disable-pip-version-check clopt | sed -n '1,2p'

export CLOPT_LIBRARY=$lib CLOPT_CLI=$cli
# Run from outside the source tree so the installed package is the one imported.
cd "$venv"
set +e
"$vpy" -m pytest -p no:cacheprovider -q -ra ${PYTEST_ARGS:-} "$root/python/tests"
rc=$?
set -e
if [ $rc = 5 ]; then
    die "pytest collected no tests"
elif [ $rc != 0 ]; then
    die "pytest failed (exit $rc)"
fi
"$vpy" - "$venv" <<'EOF'
import os, sys
import clopt
here = os.path.realpath(os.path.dirname(clopt.__file__))
assert here.startswith(os.path.realpath(sys.argv[1])), "clopt imported from " + here
print("python_check: clopt", clopt.__version__, "from", here, "with libclopt", clopt.version())
EOF
echo "python_check: OK"
