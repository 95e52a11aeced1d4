#!/usr/bin/env bash
# Quality and speed per quantization type: for each model family (conf-llama-spm, conf-llama3-bpe,
# conf-qwen2) and type (f16, q8_0, q4_0, q4_k_m) prints a markdown row with the file size,
# perplexity, KL divergence and top-1 agreement against the family's F16 file (`edgelm eval`),
# and decode speed (`edgelm bench -p 0 -n 64 -r 1`, tg64 t/s).
# Files missing from ../shared/models are made from the F16 file with `edgelm quantize` into
# $WORK. The shared models have random weights: their perplexities are huge and only the
# relative figures (KL, top-1, PPL ratio) say anything about the quantization.
#
# Usage: bench/quality/table.sh [EDGELM] > table.md
#   EDGELM   the CLI (default build/tools/edgelm/edgelm, the Release build)
# Env: MODELS (default ../shared/models), TEXT (default ../shared/golden/conformance/ppl-text.txt),
#      CTX (128), CHUNKS (16), THREADS (2), WORK (a temporary folder), FAMILIES, TYPES.
set -euo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
EDGELM="${1:-$root/build/tools/edgelm/edgelm}"
MODELS="${MODELS:-$root/../shared/models}"
TEXT="${TEXT:-$root/../shared/golden/conformance/ppl-text.txt}"
CTX="${CTX:-128}"
CHUNKS="${CHUNKS:-16}"
THREADS="${THREADS:-2}"
FAMILIES="${FAMILIES:-conf-llama-spm conf-llama3-bpe conf-qwen2}"
TYPES="${TYPES:-f16 q8_0 q4_0 q4_k_m}"
WORK="${WORK:-$(mktemp -d)}"
mkdir -p "$WORK"

[ -x "$EDGELM" ] || { echo "table.sh: no CLI at $EDGELM (build edgelm_cli)" >&2; exit 1; }
[ -f "$TEXT" ] || { echo "table.sh: no text at $TEXT" >&2; exit 1; }

echo "Text: $(basename "$TEXT"), $CHUNKS chunks of $CTX tokens; $THREADS threads;" \
  "baseline = the family's F16 file. Random-weight models."
echo
echo "| model | type | made by | size (MiB) | PPL | PPL vs F16 | mean KL | KL p99 | top-1 agree | decode t/s (tg64) |"
echo "|---|---|---|---:|---:|---:|---:|---:|---:|---:|"
for fam in $FAMILIES; do
  base="$MODELS/$fam-f16.gguf"
  if [ ! -f "$base" ]; then
    echo "table.sh: $base is absent, skipping $fam" >&2
    continue
  fi
  for type in $TYPES; do
    model="$MODELS/$fam-$type.gguf"
    made="llama.cpp"
    [ "$type" = f16 ] && made="shared"
    if [ ! -f "$model" ]; then
      model="$WORK/$fam-$type.gguf"
      made="edgelm quantize"
      [ -f "$model" ] || "$EDGELM" quantize "$base" "$model" --type "$type" -q >&2
    fi
    report="$WORK/$fam-$type.json"
    echo "table.sh: eval $fam $type" >&2
    "$EDGELM" eval -m "$model" --baseline "$base" -f "$TEXT" -c "$CTX" --chunks "$CHUNKS" \
      -t "$THREADS" -q --report "$report" >/dev/null
    bench="$WORK/$fam-$type.bench.json"
    "$EDGELM" bench -m "$model" -p 0 -n 64 -r 1 -t "$THREADS" -o json >"$bench" 2>/dev/null
    python3 - "$report" "$bench" "$fam" "$type" "$made" <<'EOF'
import json, os, sys
rep = json.load(open(sys.argv[1]))
bench = json.load(open(sys.argv[2]))
fam, typ, made = sys.argv[3:6]
tg = [r for r in bench["results"] if r.get("n_gen", 0) > 0 and r.get("n_prompt", 0) == 0]
tps = tg[0]["avg_ts"] if tg else float("nan")
p = rep["perplexity"]
print(f"| {fam} | {typ} | {made} | {rep['model']['size_bytes'] / 1048576:.1f} | {p['value']:.6g} | "
      f"{p['relative_increase'] * 100:+.3f} % | {rep['kl']['mean']:.6f} | {rep['kl']['p99']:.6f} | "
      f"{rep['top1']['agreement'] * 100:.2f} % | {tps:.1f} |")
EOF
  done
done
