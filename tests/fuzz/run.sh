#!/usr/bin/env bash
# Builds the GGUF reader fuzzer with clang (libFuzzer + ASan/UBSan) and runs it on the seed
# corpus for a bounded time. Usage: tests/fuzz/run.sh [seconds=30]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
secs=${1:-30}
build=$root/build-fuzz
cmake -S "$root" -B "$build" -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -g1 -DNDEBUG" \
  -DEDGELM_FUZZ=ON -DEDGELM_SANITIZE=ON -DEDGELM_TESTS=OFF -DEDGELM_BENCH=OFF >/dev/null
cmake --build "$build" --target fuzz_gguf -j"$(nproc)" >/dev/null
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$root"/tests/fuzz/corpus/* "$work"/
"$build"/tests/fuzz/fuzz_gguf -max_total_time="$secs" -max_len=4096 -timeout=10 \
  -artifact_prefix="$work/" "$work" 2>&1 | tail -n 3
echo "fuzz_gguf: no crash in ${secs}s"

# The server's request parser (src/server/request.cpp).
cmake --build "$build" --target fuzz_server_request -j"$(nproc)" >/dev/null
work2=$(mktemp -d)
trap 'rm -rf "$work" "$work2"' EXIT
cp "$root"/tests/fuzz/corpus-server-request/* "$work2"/
"$build"/tests/fuzz/fuzz_server_request -max_total_time="$secs" -max_len=8192 -timeout=10 \
  -artifact_prefix="$work2/" "$work2" 2>&1 | tail -n 3
echo "fuzz_server_request: no crash in ${secs}s"
