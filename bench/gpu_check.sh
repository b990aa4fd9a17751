#!/usr/bin/env bash
# The GPU check, prepared for a machine with a CUDA GPU and the CUDA build of torch, in one
# run of about 10 minutes. It installs nothing: run `make setup` first (the package
# registries only), then swap in the CUDA build of torch from PyPI if the lock's is the CPU
# one (`.venv/bin/pip install torch==<the lock's version>`).
#
#   bench/gpu_check.sh            # prints every table; exits non-zero if a check fails
#
# 1. greedy tokens of a 3-node route on the GPU against `generate` on the GPU;
# 2. bench/detection.py with GPU nodes against a CPU verifier, and against a GPU verifier:
#    the honest score distributions, detection per cheat mode, and the threshold each pair
#    calibrates to (verifier/hardware_rules.py takes a pair's rule from these figures);
# 3. tokens/s of the route on the GPU against the CPU, for one and eight clients.
set -euo pipefail
cd "$(dirname "$0")/.."
export SHAREDLLM_HOME="${SHAREDLLM_HOME:-$PWD/.state}"
PY=.venv/bin/python
if ! $PY -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)'; then
  echo "error: no CUDA GPU is visible to this torch ($($PY -c 'import torch; print(torch.__version__)'))" >&2
  exit 2
fi
$PY -c 'import torch; print("GPU:", torch.cuda.get_device_name(0), "torch", torch.__version__)'
step() { echo; echo "== $*"; }
DETECT=(--prompts 16 --tokens 8 --cheat-jobs 2 --cost-jobs 1 --cost-tokens 32)

step "1/3 greedy tokens: 3 GPU nodes against generate on the GPU"
timeout 180 $PY bench/device_tokens.py --device cuda --prompts 8

step "2/3 detection: GPU nodes, CPU verifier"
timeout 150 $PY bench/detection.py "${DETECT[@]}" --node-device cuda --verifier-device cpu
step "2/3 detection: GPU nodes, GPU verifier"
timeout 120 $PY bench/detection.py "${DETECT[@]}" --node-device cuda --verifier-device cuda

step "3/3 tokens/s for 1 and 8 clients: GPU, then CPU"
timeout 120 $PY bench/concurrency.py --clients 1,8 --rounds 1 --device cuda
timeout 150 $PY bench/concurrency.py --clients 1,8 --rounds 1 --device cpu
