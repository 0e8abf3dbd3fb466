#!/usr/bin/env bash
# The README's main job: the embedded pipeline (one process, no Kafka, no Redis) on a video against a gallery
# enrolled from reference photos.
#   npm run demo -- <video file | rtsp/http url | image folder> <reference folder> [faceflow run flags...]
# The reference folder holds either one image per person (`00NN_name.png` or `name.jpg`: the name is the part
# after the first '_', without the extension) or one sub-folder per person. The gallery is written to
# .cache/demo-gallery.json (rebuilt each time). Identity events go to stdout as JSON lines; everything else
# (setup: npm ci, ffmpeg, models, build; enrolment) goes to stderr. Works on a fresh clone: scripts/setup.sh.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [ $# -lt 2 ]; then
  echo "usage: npm run demo -- <video | rtsp url | image folder> <reference folder> [faceflow run flags...]" >&2
  exit 2
fi
source="$1"; refs="$2"; shift 2
[ -d "$refs" ] || { echo "demo: reference folder not found: $refs" >&2; exit 1; }

# npm dependencies, ffmpeg, models, build: all on stderr, so stdout carries identity events only (issue 12)
bash scripts/setup.sh
mkdir -p .cache
gallery=.cache/demo-gallery.json
rm -f "$gallery"

if find "$refs" -mindepth 1 -maxdepth 1 -type d | grep -q .; then
  node packages/cli/dist/main.js enroll --gallery "$gallery" --dir "$refs" >&2
else
  shopt -s nullglob nocaseglob
  for f in "$refs"/*.{png,jpg,jpeg,webp}; do
    base=$(basename "$f"); base="${base%.*}"
    name="${base#*_}"   # 0008_jessica -> jessica; jessica -> jessica
    node packages/cli/dist/main.js enroll --gallery "$gallery" --name "$name" "$f" >&2 \
      || echo "demo: skipped $f (see the reason above)" >&2
  done
fi
exec node packages/cli/dist/main.js run --source "$source" --gallery "$gallery" --json "$@"
