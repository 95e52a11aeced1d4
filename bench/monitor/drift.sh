#!/usr/bin/env bash
# Drift detection, measured: a baseline of a model's canary set, then N canary runs with other
# seeds on the UNCHANGED model (every alarm is a false alarm) and on DAMAGED copies (Gaussian
# noise added to some tensors with `edgelm monitor perturb`; every missed alarm is a miss).
# Prints a markdown table (docs/monitor.md). Release build expected at build/.
#
#   bench/monitor/drift.sh [MODEL] [RUNS] [DAMAGED_RUNS]
#   defaults: ../shared/models/conf-llama-spm-f16.gguf, 20 runs unchanged, 5 per damaged copy
set -euo pipefail
cd "$(dirname "$0")/../.."
EDGELM=${EDGELM:-build/tools/edgelm/edgelm}
MODEL=${1:-../shared/models/conf-llama-spm-f16.gguf}
RUNS=${2:-20}
DAMAGED_RUNS=${3:-5}
THREADS=${THREADS:-2}
[ -x "$EDGELM" ] || { echo "no $EDGELM (build the Release edgelm_cli first)" >&2; exit 1; }
[ -f "$MODEL" ] || { echo "no model $MODEL" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# 16 canary prompts.
python3 - "$work/canary.txt" <<'PY'
import sys
topics = ["the weather", "a short story", "the capital of France", "how to cook rice",
          "the history of Rome", "a poem about the sea", "prime numbers", "the solar system",
          "a letter to a friend", "the rules of chess", "a recipe for bread", "machine learning",
          "the ocean tides", "a mountain village", "the train timetable", "a birthday party"]
with open(sys.argv[1], "w") as f:
    for i, t in enumerate(topics):
        f.write('{"id": "c%d", "prompt": "Write about %s."}\n' % (i, t))
PY

"$EDGELM" monitor baseline -m "$MODEL" --canary "$work/canary.txt" -o "$work/baseline.json" \
  --max-tokens 24 --samples 4 --seed 1 -t "$THREADS" 2>&1 | tail -1 >&2

declare -A DAMAGE=(
  [noise-0.50-output]="--tensor output.weight --noise 0.5"
  [noise-0.20-ffn_down]="--tensor ffn_down --noise 0.2"
  [noise-0.05-all-blk]="--tensor blk. --noise 0.05"
)
for name in "${!DAMAGE[@]}"; do
  # shellcheck disable=SC2086
  "$EDGELM" monitor perturb -m "$MODEL" -o "$work/$name.gguf" ${DAMAGE[$name]} --seed 7 2>/dev/null
done

run_set() {  # label model runs -> one table row
  local label=$1 model=$2 runs=$3
  : >"$work/$label.jsonl"
  for i in $(seq 1 "$runs"); do
    "$EDGELM" monitor canary -m "$model" --baseline "$work/baseline.json" --seed $((1000 + i)) \
      -t "$THREADS" --json >>"$work/$label.jsonl" || [ $? -eq 3 ]
  done
  python3 - "$label" "$work/$label.jsonl" <<'PY'
import json, sys
label, path = sys.argv[1], sys.argv[2]
rows = [json.loads(l) for l in open(path)]
alarms = sum(r["alarm"] for r in rows)
feat = sum(any(f["alarm"] for f in r["features"]) for r in rows)
ppl = sum(r["perplexity_ratio"] for r in rows) / len(rows)
agr = sum(r["agreement"] for r in rows) / len(rows)
ovl = sum(r["overlap"] for r in rows) / len(rows)
flagged = {}
for r in rows:
    for f in r["features"]:
        if f["alarm"]:
            flagged[f["feature"]] = flagged.get(f["feature"], 0) + 1
minp = {}
for r in rows:
    for f in r["features"]:
        if f["tested"]:
            minp[f["feature"]] = min(minp.get(f["feature"], 1.0), f["ks_p"])
top = ", ".join(f"{k} {v}" for k, v in sorted(flagged.items(), key=lambda kv: -kv[1])) or "-"
print(f"| {label} | {len(rows)} | {alarms} | {feat} | {ppl:.3f} | {agr:.3f} | {ovl:.3f} | {top} |")
PY
}

echo "model: $MODEL; canary: 16 prompts x 4 samples x 24 tokens (64 feature samples per run)"
echo
echo "| model | runs | alarms (any test) | feature-test alarms (KS+PSI) | mean ppl ratio | mean greedy agreement | mean token overlap | features flagged (runs) |"
echo "|---|---:|---:|---:|---:|---:|---:|---|"
run_set unchanged "$MODEL" "$RUNS"
for name in noise-0.50-output noise-0.20-ffn_down noise-0.05-all-blk; do
  run_set "$name" "$work/$name.gguf" "$DAMAGED_RUNS"
done
