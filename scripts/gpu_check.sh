#!/usr/bin/env bash
# One command for a machine with an NVIDIA GPU and PyTorch built with CUDA (no network, no BentoML and a
# CPU-only onnxruntime are fine): trains each recipe briefly on the GPU in fp32 and bf16 (WGAN-GP also in
# fp16), under torchrun with a --resume, exports each run, times the generators on the GPU (PyTorch) against
# ONNX Runtime on the CPU, prints the largest uint8 difference between CPU and GPU images of the same seeds,
# and, where onnxruntime-gpu / BentoML are installed, runs the exports on CUDAExecutionProvider and serves
# them. Prints one table; exit 0 when every run trained with finite losses and exported.
#
#   scripts/gpu_check.sh                 # about 3-6 minutes on one modern GPU; stops itself at 9.5 minutes
#   PY=/path/to/python scripts/gpu_check.sh --steps 400 --work /tmp/gpu_check
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-$([ -x .venv/bin/python ] && echo .venv/bin/python || echo python3)}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export PATH="$(dirname "$("$PY" -c 'import sys; print(sys.executable)')"):$PATH"  # its torchrun
exec timeout --kill-after 10 570 "$PY" scripts/gpu_check.py "$@"
