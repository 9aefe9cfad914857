#!/usr/bin/env bash
# The GPU acceptance check (issue 14), one command, meant to take under 8 minutes on an
# H100/H200: the gpu-marked tests (tests/test_gpu.py), then benchmarks/gpu_check.py
# (training against the reference step, prediction against MONAI in fp32 and bf16, the
# GPU's busy share during path -> path prediction, TFLOP/s against the bf16 matmul
# peak). Tables go to $OUT (default gpu_check_output/): gpu_tests.txt and gpu_check.md.
#
# The reference box: Python 3.12, torch 2.11 (CUDA), numpy, scipy, tifffile, safetensors,
# pytest, hypothesis, nvidia-ml-py; no MONAI, zarr, dask or napari, no network. Prepare,
# on a machine with the package registries, in the repository's root:
#   echo /.whl/ >> .git/info/exclude
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#     --implementation cp --platform manylinux2014_x86_64 -d .whl monai==1.6.1
# (MONAI is pure Python; napari-pix2pix itself runs from src/.) Carry .whl, then:
#   bash benchmarks/gpu_check.sh                         # on the GPU box
#   bash benchmarks/gpu_check.sh --device cpu --small    # anywhere: the CPU fallback
# Arguments go to gpu_check.py.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-gpu_check_output}"
mkdir -p "$OUT"
if [ -d .whl ] && ! python3 -c "import monai" 2>/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl
  export PYTHONPATH="/tmp/site:${PYTHONPATH:-}"
fi
export PYTHONPATH="$PWD/src:$PWD/tests:${PYTHONPATH:-}" PYTHONUNBUFFERED=1
# without CUDA the tests are skipped (collected, so pytest does not exit 5). The
# benchmark runs whatever the tests say (it writes its tables part by part); the exit
# status is the worse of the two
tests=0
python3 -m pytest -m gpu tests/test_gpu.py -q -p no:cacheprovider -rs 2>&1 | tee "$OUT/gpu_tests.txt" || tests=$?
bench=0
python3 benchmarks/gpu_check.py --out "$OUT" "$@" || bench=$?
echo "gpu tests: exit $tests; benchmark: exit $bench (tables in $OUT)"
exit $(( tests > bench ? tests : bench ))
