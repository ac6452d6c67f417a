#!/usr/bin/env bash
# CI job: build gradflow another way (another compiler, other CMake switches) with pip, into a
# folder of its own, and run tests against that build.
#
#   .ci/variant.sh NAME CXX [KEY=VALUE ...] [-- PYTEST_ARGS ...]
#
# CXX is the C++ compiler (a command on PATH), each KEY=VALUE a CMake define. Runs in the active
# Python environment, which must have numpy, scipy-openblas32 and the test tools installed; the
# build's own directory keeps its CMake cache apart from the main build's.
set -euo pipefail
cd "$(dirname "$0")/.."
name=$1 cxx=$2
shift 2
defines=()
while [ $# -gt 0 ] && [ "$1" != -- ]; do defines+=("-Ccmake.define.$1"); shift; done
[ "${1:-}" = -- ] && shift
start=$SECONDS

if ! command -v "$cxx" >/dev/null; then
    echo "SKIPPED: the $name job: $cxx is not installed"
    [ "${CI:-}" = true ] && exit 1
    exit 0
fi
"$cxx" --version | head -1

dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
CXX=$cxx python -m pip install -q --no-deps --target "$dir/site" "-Cbuild-dir=build/ci-$name" \
    "${defines[@]}" .
echo "CI time: $name: build: $((SECONDS - start))s"

# The tests import this build (PYTHONPATH comes before the environment's own gradflow).
PYTHONPATH="$dir/site" python - <<'EOF'
import gradflow
assert gradflow.__file__.startswith(__import__("os").environ["PYTHONPATH"]), gradflow.__file__
EOF
PYTHONPATH="$dir/site" python -m pytest -q -p no:cacheprovider "$@"
echo "CI time: $name: build and tests: $((SECONDS - start))s"
