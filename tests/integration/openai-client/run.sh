#!/usr/bin/env bash
# Runs the openai-npm integration test against `edgelm serve`. Exit 77 (skipped, with a
# message) when node, node_modules (npm ci here), the model or the binary is missing.
#   tests/integration/openai-client/run.sh /path/to/edgelm /path/to/model.gguf
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cli=${1:?usage: run.sh EDGELM_BINARY MODEL}
model=${2:?usage: run.sh EDGELM_BINARY MODEL}
skip() { echo "SKIPPED: $*"; exit 77; }
command -v node >/dev/null || skip "node is not installed"
[ -d "$here/node_modules/openai" ] || skip "no node_modules: run 'npm ci' in $here"
[ -f "$model" ] || skip "model $model is absent"
[ -x "$cli" ] || skip "edgelm binary $cli is absent"
export EDGELM_CLI=$cli EDGELM_MODEL=$model
exec node --test --test-concurrency=1 "$here/openai-client.test.mjs"
