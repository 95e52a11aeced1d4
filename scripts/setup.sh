#!/usr/bin/env bash
# One command on a fresh Debian 12 machine: installs the apt dependencies, builds edgelm
# (Release, build/), and generates text from a model.
#   scripts/setup.sh [MODEL.gguf] [PROMPT]
# MODEL defaults to ../shared/models/conf-llama-spm-f16.gguf when that file exists.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

packages=(build-essential cmake pkg-config git clang lld libclang-rt-14-dev
  libhwy-dev googletest libgtest-dev libbenchmark-dev nlohmann-json3-dev libcli11-dev
  libfmt-dev libspdlog-dev libzstd-dev libsodium-dev libsqlite3-dev libcurl4-openssl-dev
  nodejs npm)
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "edgelm setup: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi

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
