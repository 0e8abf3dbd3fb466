#!/usr/bin/env bash
# A training-folder view of the LFW identities named in a pairs file, without copying any image:
#   scripts/lfw-identity-view.sh <lfw images root> <pairs file> <out dir>
# makes <out dir>/<Name> -> <lfw images root>/<Name> (a symlink) for every name in the pairs file, so that
# `faceflow train --data <out dir>` trains on exactly those people (e.g. pairsDevTrain.txt's, which are
# disjoint from pairsDevTest.txt's). Identities with a single image are skipped by `faceflow train` itself.
set -euo pipefail
if [ $# -ne 3 ]; then
  echo "usage: $0 <lfw images root> <pairs file> <out dir>" >&2
  exit 2
fi
images=$(cd "$1" && pwd)
pairs=$2
out=$3
mkdir -p "$out"
n=0
while read -r name; do
  if [ ! -d "$images/$name" ]; then
    echo "$0: $images/$name is missing" >&2
    exit 1
  fi
  ln -sfn "$images/$name" "$out/$name"
  n=$((n + 1))
done < <(awk 'NR > 1 && NF == 3 { print $1 } NR > 1 && NF == 4 { print $1; print $3 }' "$pairs" | sort -u)
echo "$n identities linked under $out" >&2
