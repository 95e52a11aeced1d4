#!/usr/bin/env bash
# Side-by-side benchmark of edgelm against llama.cpp (node-llama-cpp's prebuilt CPU binary).
#
#   bench/peer/run.sh MODEL.gguf [threads=1,2] [pp=512] [tg=128] [reps=3]
#
# Installs the peer into bench/peer/node_modules on first use (versions pinned in package.json and
# package-lock.json; only the linux-x64 CPU binary package), checks that it loads offline, then
# runs both engines alternately, one process per engine per repetition, and prints a markdown
# table of t/s for each engine, the ratio edgelm/llama.cpp, and each process's peak RSS.
# Environment: EDGELM=path/to/edgelm (default: first of build-bench, build, build-* that has one),
#              PEER_ONLY=1 to measure llama.cpp alone, COMPARE_JSON=out.json to keep raw numbers.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"

if [[ $# -lt 1 ]]; then
  sed -n '2,12p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
  exit 2
fi
model="$1"; threads="${2:-1,2}"; pp="${3:-512}"; tg="${4:-128}"; reps="${5:-3}"
[[ -f "$model" ]] || { echo "run.sh: model $model not found" >&2; exit 1; }

# 1. The peer: install if absent, verify it loads without a GPU or a source build.
if [[ ! -f "$here/node_modules/@node-llama-cpp/linux-x64/package.json" ||
      ! -f "$here/node_modules/node-llama-cpp/package.json" ]]; then
  command -v npm >/dev/null || { echo "run.sh: npm is needed (apt-get install npm)" >&2; exit 1; }
  echo "run.sh: installing node-llama-cpp into $here/node_modules" >&2
  (cd "$here" && npm install --no-save --omit=optional --no-audit --no-fund --ignore-scripts >&2)
fi
node "$here/peer-bench.mjs" --check >&2 ||
  { echo "run.sh: node-llama-cpp does not load (delete $here/node_modules and retry)" >&2; exit 1; }

# 2. edgelm.
edgelm="${EDGELM:-}"
if [[ -z "$edgelm" ]]; then
  for d in "$root/build-bench" "$root/build" "$root"/build-*; do
    if [[ -x "$d/tools/edgelm/edgelm" ]]; then edgelm="$d/tools/edgelm/edgelm"; break; fi
  done
fi
extra=()
if [[ "${PEER_ONLY:-0}" == 1 ]]; then
  extra+=(--peer-only)
elif [[ -z "$edgelm" ]] || ! "$edgelm" bench --help >/dev/null 2>&1; then
  echo "run.sh: no edgelm binary with 'bench' found (set EDGELM=...); measuring llama.cpp only" >&2
  extra+=(--peer-only)
else
  extra+=(--edgelm "$edgelm")
fi
[[ -n "${COMPARE_JSON:-}" ]] && extra+=(--json "$COMPARE_JSON")

exec node "$here/compare.mjs" --model "$model" --threads "$threads" --pp "$pp" --tg "$tg" --reps "$reps" "${extra[@]}"
