#!/usr/bin/env bash
# The GPU check, in one go, on a machine with an NVIDIA GPU and no network whose Python already
# has CuPy, numpy, pytest and the build tools (torch too, for the comparisons): build gradflow
# from this working tree into a folder on PYTHONPATH (no venv: one would hide the preinstalled
# CuPy and torch), run the whole test suite with the CUDA cases enabled, then the GPU
# benchmarks. A package the interpreter lacks (typically scipy-openblas32 and ml_dtypes) comes
# as a wheel from .whl/, fetched beforehand with `python3 -m pip download --only-binary=:all:
# --python-version 3.12 --platform manylinux2014_x86_64 -d .whl scipy-openblas32 ml_dtypes` (a few MB;
# .whl/ is git-ignored, so it must be named among the paths carried to the machine).
#
# Results in $OUT (else bench/results/): gpu_tests.xml (junit) and gpu_bench.json. Exit status:
# the test suite's (the benchmarks run either way). Budget: under 5 minutes (the tests are
# stopped after GF_GPU_TEST_TIMEOUT seconds, 200 by default).
#
# CI dry-runs the whole script on the CuPy stand-in: GRADFLOW_TEST_FAKE_CUDA=N puts
# tests/fakecupy on the path, and the benchmarks run with --quick.
set -uo pipefail
cd "$(dirname "$0")/.." && REPO=$(pwd)
PY=${PYTHON:-python3}
SITE=${GF_GPU_SITE:-/tmp/gradflow-gpu-site}
RESULTS=${OUT:-$REPO/bench/results}
mkdir -p "$RESULTS" "$SITE"
export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
BENCH_ARGS=()
if [ -n "${GRADFLOW_TEST_FAKE_CUDA:-}" ]; then
    export PYTHONPATH="$REPO/tests/fakecupy:$PYTHONPATH"
    BENCH_ARGS=(--quick)
    echo "dry run on the CuPy stand-in ($GRADFLOW_TEST_FAKE_CUDA fake device(s))"
fi

# What the build and the tests import, from .whl/ where the interpreter lacks it.
for pkg in scipy_openblas32:scipy-openblas32 pybind11:pybind11 scikit_build_core:scikit-build-core \
           pytest:pytest hypothesis:hypothesis tqdm:tqdm ml_dtypes:ml_dtypes; do
    "$PY" -c "import ${pkg%%:*}" 2>/dev/null && continue
    "$PY" -m pip -q --disable-pip-version-check install --no-index --find-links .whl --no-deps \
        --target "$SITE" "${pkg#*:}" || { echo "missing ${pkg#*:} (and no wheel in .whl/)"; exit 2; }
done
if ! command -v cmake >/dev/null; then  # the build's one tool outside Python
    "$PY" -m pip -q --disable-pip-version-check install --no-index --find-links .whl --no-deps \
        --target "$SITE" cmake || { echo "cmake is missing (and no wheel in .whl/)"; exit 2; }
    export PATH="$SITE/bin:$PATH"
fi
# Built against the interpreter's own packages; the build folder is the project's usual one,
# so a second run only relinks.
CMAKE_BUILD_PARALLEL_LEVEL=$(nproc) "$PY" -m pip -q --disable-pip-version-check install \
    --no-index --no-deps --no-build-isolation --upgrade --target "$SITE" . || exit 2

cd /tmp
"$PY" - <<'PYEOF' || exit 3
import gradflow as gf
assert gf.cuda.is_available(), gf.cuda.unavailable_reason()
print("gradflow", gf.__version__, "from", gf.__file__, "on", gf.cuda.device_count(), "GPU(s)")
PYEOF

timeout "${GF_GPU_TEST_TIMEOUT:-200}" "$PY" -m pytest -q -rs -p no:cacheprovider --rootdir "$REPO" "$REPO/tests" \
    --junitxml="$RESULTS/gpu_tests.xml" 2>&1 | tail -40
status=${PIPESTATUS[0]}
echo "test suite exit status: $status"

timeout 100 "$PY" "$REPO/bench/gpu/bench_gpu.py" --out "$RESULTS" "${BENCH_ARGS[@]}"
exit "$status"
