#!/usr/bin/env bash
# The notebook's scenario from the CLI on real photos: enroll a dozen LFW people from one photo each, then
# for each of them verify a different photo (must match), let the next person claim that name (must be
# rejected), and identify the photo (must name the person, or say unknown; never someone else).
#   bash scripts/notebook-scenario.sh ../shared/data/lfw/images [N=12]
set -euo pipefail
root="${1:?usage: notebook-scenario.sh <lfw images root> [N]}"; n="${2:-12}"
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ff() { node packages/cli/dist/main.js "$@"; }
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
# the first N people (alphabetically) with at least 2 photos: the first photo enrolls, the second is the new one
declare -A second
people=()
for d in "$root"/*/; do
  p=$(basename "$d"); mapfile -t photos < <(ls "$d" | grep -i '\.jpg$' | sort)
  [ "${#photos[@]}" -ge 2 ] || continue
  mkdir -p "$work/enroll/$p"; ln -s "$(realpath "$d/${photos[0]}")" "$work/enroll/$p/"
  second[$p]="$d/${photos[1]}"; people+=("$p")
  [ "${#people[@]}" -ge "$n" ] && break
done
ff enroll --gallery "$work/g.json" --dir "$work/enroll" --json >/dev/null
ok_verify=0; ok_reject=0; named=0; unknown=0; wrong=0
for i in "${!people[@]}"; do
  p=${people[$i]}; other=${people[$(( (i + 1) % ${#people[@]} ))]}
  photo="${second[$p]}"
  v=$(ff verify --gallery "$work/g.json" --name "$p" "$photo" --json)
  x=$(ff verify --gallery "$work/g.json" --name "$other" "$photo" --json)
  id=$(ff identify --gallery "$work/g.json" "$photo" --json)
  echo "$p: verify $v | as $other: $x | identify $(echo "$id" | node -e 'const r=JSON.parse(require("fs").readFileSync(0));console.log(JSON.stringify(r.faces.map(f=>({identity:f.identity,distance:f.distance}))))')"
  echo "$v" | grep -q '"match":true' && ok_verify=$((ok_verify + 1))
  echo "$x" | grep -q '"match":false' && ok_reject=$((ok_reject + 1))
  got=$(echo "$id" | node -e 'const r=JSON.parse(require("fs").readFileSync(0));const c=r.faces.map(f=>f.identity);console.log(c.includes(process.argv[1])?"named":c.some(x=>x!==null)?"wrong":"unknown")' "$p")
  case $got in named) named=$((named + 1));; wrong) wrong=$((wrong + 1));; *) unknown=$((unknown + 1));; esac
done
echo "people ${#people[@]}: genuine verified ${ok_verify}/${#people[@]}, impostor rejected ${ok_reject}/${#people[@]}, identify named ${named}, unknown ${unknown}, wrong ${wrong}"
