#!/usr/bin/env bash
# The whole test suite: builds with ASan + UBSan (build-test/), runs every test with CTest,
# then fuzzes the GGUF reader briefly (libFuzzer, clang). Exits non-zero if anything fails.
#   scripts/test.sh            (EDGELM_FUZZ_SECONDS=30 by default; 0 skips fuzzing)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
jobs=$(nproc)
scripts/install-deps.sh
# Formatting is part of the contract (.clang-format): fail on any unformatted source.
git ls-files '*.cpp' '*.h' '*.hpp' '*.c' | xargs clang-format --dry-run --Werror
# -g1: line tables only (sanitizer reports keep file:line); full -g cost a quarter of the compile.
cmake -S . -B build-test -DCMAKE_BUILD_TYPE=Debug -DEDGELM_SANITIZE=ON -DEDGELM_BENCH=OFF \
  -DCMAKE_CXX_FLAGS_DEBUG="-O1 -g1"
cmake --build build-test -j"$jobs"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
(cd tests/integration/openai-client && npm ci --no-audit --no-fund --silent)  # openai npm client test
(cd build-test && ctest --output-on-failure -j"$jobs" --timeout 900)
secs=${EDGELM_FUZZ_SECONDS:-30}
if [ "$secs" != 0 ]; then
  tests/fuzz/run.sh "$secs"
fi
echo "edgelm: all tests passed"
