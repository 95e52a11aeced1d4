#!/usr/bin/env bash
# Runs examples/generate.c on a conformance model: it must stream text and end with a stats
# line whose generated_tokens equals the requested count. Exit 77 (skip) without ../shared.
set -euo pipefail
exe=$1
model=$2
if [ ! -f "$model" ]; then
  echo "SKIPPED: shared file $model is absent"
  exit 77
fi
out=$("$exe" "$model" "Once upon a time" 8 2>/tmp/example-stats.$$)
stats=$(tail -n1 /tmp/example-stats.$$)
rm -f /tmp/example-stats.$$
[ -n "$out" ] || { echo "no text generated"; exit 1; }
case "$stats" in
  *'"generated_tokens":8'*) echo "ok: $out"; ;;
  *) echo "unexpected stats: $stats"; exit 1 ;;
esac
