#!/usr/bin/env bash
# CI job: cross-build the extension for aarch64 Linux and run the whole test suite under
# qemu-user, on an arm64 Python extracted from Debian bookworm and the manylinux aarch64 wheels
# of the run-time and test dependencies (torch and mpi4py are not installed: those tests skip,
# saying why). Needs the tools below (Debian 12 packages) and network access to deb.debian.org
# and PyPI. Nothing is cached between runs.
#
# GF_AARCH64_DIR: the working folder (default: a new temporary one, removed at the end).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
start=$SECONDS
elapsed() { echo "CI time: aarch64: $1: $((SECONDS - start))s"; }

tools=(aarch64-linux-gnu-g++ qemu-aarch64-static mmdebstrap cmake)
for t in "${tools[@]}"; do
    if ! command -v "$t" >/dev/null; then
        echo "SKIPPED: the aarch64 job: it needs $t (apt: g++-aarch64-linux-gnu qemu-user-static" \
             "mmdebstrap cmake)"
        [ "${CI:-}" = true ] && exit 1
        exit 0
    fi
done

if [ -n "${GF_AARCH64_DIR:-}" ]; then work=$GF_AARCH64_DIR; mkdir -p "$work"
else work=$(mktemp -d); trap 'rm -rf "$work"' EXIT; fi
root=$work/root    # the arm64 Debian files: interpreter, libpython headers, C++ and OpenMP runtimes
site=$work/site    # the aarch64 wheels, and gradflow (beside scipy_openblas32, as in site-packages)
build=$work/build

# `extract` unpacks the packages and their dependencies without running any maintainer script
# (nothing has to execute under emulation); docs and locales are left out.
rm -rf "$root"
mmdebstrap --quiet --variant=extract --architectures=arm64 \
    --include=python3.11,libpython3.11-dev,libstdc++6,libgomp1 \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    bookworm "$root" http://deb.debian.org/debian
elapsed "arm64 root"

# The wheels as pip would pick them on the arm64 machine (glibc 2.36: manylinux_2_28 and older).
# pybind11 is headers and CMake files only, the same for every architecture.
rm -rf "$site"
python3 -m pip install -q --target "$site" --only-binary=:all: --implementation cp \
    --python-version 3.11 --platform manylinux_2_28_aarch64 --platform manylinux2014_aarch64 \
    "numpy>=1.24" "ml_dtypes>=0.4" "scipy-openblas32>=0.3.28" "tqdm>=4.60" -r requirements-test.txt \
    "pybind11>=2.12"
elapsed "wheels"

# The emulator's command line: it starts the tests' child interpreters too (tests/conftest.py,
# GRADFLOW_TEST_LAUNCHER). With qemu's default CPU (max) OpenBLAS picks its SME kernels, which
# qemu runs wrongly; Neoverse N1 (NEON) is what an arm64 laptop or server runs anyway.
launcher="$(command -v qemu-aarch64-static) -L $root -cpu neoverse-n1"
py="$work/python3"   # the arm64 interpreter, for CMake's FindPython and the BLAS's location
printf '#!/bin/sh\nPYTHONPATH=%s exec %s %s "$@"\n' "$site" "$launcher" "$root/usr/bin/python3.11" >"$py"
chmod +x "$py"

# Python's headers: FindPython does not take them from a cross interpreter. Debian's pyconfig.h
# includes <aarch64-linux-gnu/python3.11/pyconfig.h>, found after the cross compiler's own
# headers (-idirafter), so the arm64 root's copy of glibc's headers is never used.
rm -rf "$build"
cmake -S . -B "$build" -DCMAKE_TOOLCHAIN_FILE="$repo/.ci/aarch64-toolchain.cmake" \
    -DCMAKE_BUILD_TYPE=Release -DPython_EXECUTABLE="$py" \
    -DPython_INCLUDE_DIR="$root/usr/include/python3.11" -DCMAKE_CXX_FLAGS="-idirafter $root/usr/include" \
    -Dpybind11_DIR="$site/pybind11/share/cmake/pybind11" >/dev/null
cmake --build "$build" -j2
# gradflow's Python package, then the extension and the header it installs.
cp -r src/gradflow "$site/"
find "$site/gradflow" -name '_C*.so' -delete
cmake --install "$build" --prefix "$site" >/dev/null
elapsed "build"

# The whole suite (or the tests named on the command line).
GRADFLOW_TEST_LAUNCHER="$launcher" "$py" -m pytest -q -p no:cacheprovider "$@"
elapsed "tests"
