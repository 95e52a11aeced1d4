#!/usr/bin/env bash
# One command on a fresh Debian 12 machine: installs the apt dependencies, builds edgelm
# (Release, build/), and generates text from a model.
#   scripts/setup.sh [MODEL.gguf] [PROMPT]
# MODEL defaults to ../shared/models/conf-llama-spm-f16.gguf when that file exists.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

scripts/install-deps.sh

cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DEDGELM_TESTS=OFF
cmake --build build -j"$(nproc)"

model=${1:-}
if [ -z "$model" ] && [ -f ../shared/models/conf-llama-spm-f16.gguf ]; then
  model=../shared/models/conf-llama-spm-f16.gguf
fi
if [ -z "$model" ]; then
  echo "edgelm built: build/tools/edgelm/edgelm. Give a model to run: scripts/setup.sh MODEL.gguf"
  exit 0
fi
prompt=${2:-Once upon a time}
echo "edgelm setup: generating from $model"
build/tools/edgelm/edgelm run -m "$model" -p "$prompt" -n 32 --temp 0
