#!/usr/bin/env bash
# Router figures (docs/router.md): calibrates the uncertainty threshold on the labelled set
# eval/routing/labelled.jsonl with each signal (entropy after the prompt, mean NLL of the
# prompt's tail, and prompt length in tokens as a baseline) for several target device shares,
# on every model given, and prints a markdown table: threshold, achieved device share, routing
# accuracy against the labels (easy kept on device + hard sent to cloud), and AUC.
#
#   bench/router/run.sh [EDGELM_BINARY] [MODEL...]
#   (defaults: build/tools/edgelm/edgelm and the shared conformance models)
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
bin="${1:-$root/build/tools/edgelm/edgelm}"
shift || true
models=("$@")
if [ ${#models[@]} -eq 0 ]; then
  models=("$root/../shared/models/conf-llama-spm-f16.gguf" "$root/../shared/models/conf-qwen2-f16.gguf")
fi
set_file="$root/eval/routing/labelled.jsonl"
echo "| model | signal | target share | threshold | device share | routing accuracy | easy on device | hard to cloud | AUC |"
echo "|---|---|---|---|---|---|---|---|---|"
for m in "${models[@]}"; do
  [ -f "$m" ] || { echo "skip: $m absent" >&2; continue; }
  for signal in entropy nll tokens; do
    for share in 0.3 0.5 0.7; do
      "$bin" route calibrate --set "$set_file" -m "$m" --signal "$signal" \
          --target-device-share "$share" -t 2 2>/dev/null |
        python3 -c '
import json, sys, os
r = json.loads(sys.stdin.read())
print("| {} | {} | {} | {:.4f} | {:.2f} | {:.2f} | {:.2f} | {:.2f} | {:.3f} |".format(
    os.path.basename(r["model"]), r["signal"], r["target_device_share"], r["threshold"],
    r["device_share"], r["routing_accuracy"], r["easy_kept_on_device"], r["hard_sent_to_cloud"], r["auc"]))'
    done
  done
done
