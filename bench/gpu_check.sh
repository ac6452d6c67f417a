#!/usr/bin/env bash
# The GPU check, in one go, on a machine with an NVIDIA GPU, Python 3.12, cupy-cuda13x already
# installed and no network: install gradflow from this working tree (build dependencies come
# as wheels from .whl/, fetched beforehand with `python3 -m pip download --only-binary=:all:
# --python-version 3.12 --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64
# --platform manylinux_2_17_x86_64 -d .whl numpy scipy-openblas32 pybind11 scikit-build-core
# ninja cmake pytest hypothesis tqdm`), run the whole test suite with the CUDA cases enabled,
# then the GPU benchmarks (vs PyTorch when importable). Results: $OUT or bench/results/.
# Exit status: the test suite's (the benchmarks run either way). Budget: about 5 minutes.
set -uo pipefail
cd "$(dirname "$0")/.." && REPO=$(pwd)
PY=${PYTHON:-python3}
VENV=${GF_GPU_VENV:-/tmp/gradflow-gpu-venv}
RESULTS=${OUT:-$REPO/bench/results}
mkdir -p "$RESULTS"

# The system site-packages keep the preinstalled CuPy (and torch, if any) visible.
"$PY" -m venv --system-site-packages "$VENV" || exit 2
PIP=("$VENV/bin/python" -m pip -q --disable-pip-version-check install --no-index --find-links .whl)
"${PIP[@]}" numpy scipy-openblas32 pybind11 scikit-build-core ninja cmake pytest hypothesis tqdm || exit 2
CMAKE_BUILD_PARALLEL_LEVEL=$(nproc) "${PIP[@]}" --no-build-isolation -C build-dir=/tmp/gradflow-gpu-build . || exit 2

cd /tmp
"$VENV/bin/python" - <<'PYEOF' || exit 3
import gradflow as gf
assert gf.cuda.is_available(), gf.cuda.unavailable_reason()
print("gradflow", gf.__version__, "on", gf.cuda.device_count(), "GPU(s)")
PYEOF

timeout 200 "$VENV/bin/python" -m pytest -q -rs -p no:cacheprovider --rootdir "$REPO" "$REPO/tests" \
    --junitxml="$RESULTS/gpu_tests.xml" 2>&1 | tail -40
status=${PIPESTATUS[0]}
echo "test suite exit status: $status"

timeout 100 "$VENV/bin/python" "$REPO/bench/gpu/bench_gpu.py" --out "$RESULTS"
exit "$status"
