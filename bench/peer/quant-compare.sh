#!/usr/bin/env bash
# Our quantized files in llama.cpp: quantize each shared conformance F16 model with
# `edgelm quantize`, compute its perplexity in llama.cpp (node-llama-cpp, perplexity.mjs) and in
# edgelm (`edgelm eval`), next to llama.cpp's perplexity of llama-quantize's file of the same type
# where ../shared/models has one, and compare tensor data byte for byte with that file.
#
#   bench/peer/quant-compare.sh [types=q8_0,q4_0] [models=llama-spm,llama3-bpe,qwen2]
#
# Protocol: ../shared/golden/conformance/ppl-text.txt, chunks of 128 tokens, 16 chunks, second
# half scored (llama-perplexity -c 128 -b 128 --chunks 16, as in ../shared/golden/README.md).
# Environment: EDGELM=path/to/edgelm (default: build-test, then build), SHARED=../shared,
# OUT=directory for the quantized files (default: a temporary directory, removed at the end).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
types="${1:-q8_0,q4_0}"
models="${2:-llama-spm,llama3-bpe,qwen2}"
shared="${SHARED:-$root/../shared}"
text="$shared/golden/conformance/ppl-text.txt"
edgelm="${EDGELM:-}"
for c in "$root/build-test/tools/edgelm/edgelm" "$root/build/tools/edgelm/edgelm"; do
  [[ -z "$edgelm" && -x "$c" ]] && edgelm="$c"
done
[[ -x "$edgelm" ]] || { echo "quant-compare.sh: no edgelm binary (set EDGELM=...)" >&2; exit 1; }
[[ -f "$text" ]] || { echo "quant-compare.sh: $text not found" >&2; exit 1; }
out="${OUT:-}"
if [[ -z "$out" ]]; then
  out="$(mktemp -d)"
  trap 'rm -rf "$out"' EXIT
fi

peer_ppl() { node "$here/perplexity.mjs" --model "$1" --file "$text" --ctx 128 --chunks 16 --threads 2 2>/dev/null |
  python3 -c 'import json,sys; print("%.4f" % json.load(sys.stdin)["ppl"])'; }
edgelm_ppl() { "$edgelm" eval -m "$1" -f "$text" -c 128 --chunks 16 -t 2 -q 2>/dev/null |
  sed -n 's/^perplexity *\([0-9.]*\).*/\1/p'; }
golden_ppl() { sed -n "s/^| $1 | \([0-9.]*\) |.*/\1/p" "$shared/golden/README.md"; }
# "21/21 identical" for tensor data of $1 vs $2 (matching by name), via `edgelm info --json`.
tensor_identity() {
  python3 - "$1" "$2" "$edgelm" <<'EOF'
import json, subprocess, sys
def load(p):
    j = json.loads(subprocess.run([sys.argv[3], "info", p, "--json"], capture_output=True, check=True).stdout)
    return j["data_offset"], {t["name"]: t for t in j["tensors"]}
(da, ta), (db, tb) = load(sys.argv[1]), load(sys.argv[2])
fa, fb = open(sys.argv[1], "rb").read(), open(sys.argv[2], "rb").read()
same = 0
for n, t in tb.items():
    a = ta.get(n)
    if a and a["type"] == t["type"] and fa[da + a["offset"]:da + a["offset"] + a["bytes"]] == fb[db + t["offset"]:db + t["offset"] + t["bytes"]]:
        same += 1
whole = "file identical" if fa == fb else "files differ"
print(f"{same}/{len(tb)} tensors identical, {whole}")
EOF
}

echo "| model | type | ours in llama.cpp | llama-quantize file in llama.cpp (peer) | same, llama-perplexity (golden) | ours in edgelm | ours vs llama-quantize's file in llama.cpp | tensor data vs llama-quantize |"
echo "|---|---|---|---|---|---|---|---|"
IFS=, read -ra ms <<<"$models"
IFS=, read -ra ts <<<"$types"
for m in "${ms[@]}"; do
  src="$shared/models/conf-$m-f16.gguf"
  [[ -f "$src" ]] || { echo "| $m | - | source $src missing |||||"; continue; }
  for t in "${ts[@]}"; do
    ours="$out/conf-$m-$t.gguf"
    "$edgelm" quantize "$src" "$ours" --type "$t" -q 2>/dev/null
    p_ours=$(peer_ppl "$ours")
    e_ours=$(edgelm_ppl "$ours")
    theirs="$shared/models/conf-$m-$t.gguf"
    if [[ -f "$theirs" ]]; then
      p_theirs=$(peer_ppl "$theirs")
      g=$(golden_ppl "conf-$m-$t")
      rel=$(python3 -c "print('%+.4f%%' % (100*($p_ours-$p_theirs)/$p_theirs))")
      ident=$(tensor_identity "$ours" "$theirs")
    else
      p_theirs="(no shared file)"; g="-"; rel="-"; ident="(no shared file)"
    fi
    echo "| $m | $t | $p_ours | $p_theirs | ${g:--} | $e_ours | $rel | $ident |"
  done
done
