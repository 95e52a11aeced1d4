#!/usr/bin/env bash
# Compares `edgelm delta` with the generic binary diff tools on model version pairs.
#
#   bench/delta/compare.sh [WORKDIR]        (default /tmp/edgelm-delta-bench)
#
# 1. Generates a base model with edgelm-gen-model (default: ~125M parameters, Q8_0, llama
#    layout, dim 768 x 12 layers, vocab 32000; override with GEN_ARGS="...") unless
#    WORKDIR/base.gguf exists (you may put any GGUF there, e.g. one from ../shared/models).
# 2. Builds the pairs with edgelm-delta-pairs: a-meta (metadata only), b-attn (attention
#    projections of every layer perturbed), c-vocab (vocabulary rows added), d-requant (Q4_0).
# 3. For each pair and tool: patch size (and its share of the new file), time to make, time and
#    peak RSS (/usr/bin/time -v "Maximum resident set size") to apply, and a byte comparison of
#    the result with the new file. Tools: edgelm delta (level $LEVEL), xdelta3 -e -9,
#    bsdiff/bspatch, zstd --patch-from --long=31 -$ZSTD_LEVEL.
# Prints a markdown table to stdout and writes WORKDIR/$RESULTS.
#
# Environment: BUILD (Release build dir, default ./build), LEVEL (edgelm zstd level, 19),
# ZSTD_LEVEL (19), THREADS (edgelm make threads, 2), BSDIFF=0 to skip bsdiff (it needs ~17x
# the file size in memory and is the slowest: 926 s for b-attn on a shared 2-core machine),
# PAIRS ("a-meta b-attn c-vocab d-requant"), TOOLS ("edgelm xdelta3 bsdiff zstd"),
# RESULTS (results.md; rows are appended when it exists).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
BUILD="${BUILD:-$ROOT/build}"
WORK="${1:-/tmp/edgelm-delta-bench}"
LEVEL="${LEVEL:-19}"
ZSTD_LEVEL="${ZSTD_LEVEL:-19}"
THREADS="${THREADS:-2}"
BSDIFF="${BSDIFF:-1}"
PAIRS="${PAIRS:-a-meta b-attn c-vocab d-requant}"
TOOLS="${TOOLS:-edgelm xdelta3 bsdiff zstd}"
RESULTS="${RESULTS:-results.md}"
GEN_ARGS="${GEN_ARGS:---type q8_0 --dim 768 --layers 12 --heads 12 --kv-heads 4 --ff 2048 --vocab 32000}"
EDGELM="$BUILD/tools/edgelm/edgelm"
GEN="$BUILD/bench/edgelm-gen-model"
PAIRGEN="$BUILD/bench/edgelm-delta-pairs"

for b in "$EDGELM" "$GEN" "$PAIRGEN"; do
  [[ -x "$b" ]] || { echo "missing $b: cmake --build $BUILD --target edgelm_cli edgelm_gen_model edgelm_delta_pairs" >&2; exit 1; }
done
for t in xdelta3 zstd /usr/bin/time; do
  command -v "$t" >/dev/null || { echo "missing $t (scripts/install-deps.sh)" >&2; exit 1; }
done
if [[ "$BSDIFF" == 1 ]] && ! command -v bsdiff >/dev/null; then
  echo "bsdiff not installed: skipping it" >&2
  BSDIFF=0
fi

mkdir -p "$WORK"
cd "$WORK"
if [[ ! -f base.gguf ]]; then
  # shellcheck disable=SC2086
  "$GEN" --out base.gguf $GEN_ARGS >&2
fi
if [[ ! -f pairs/old.gguf ]]; then
  "$PAIRGEN" --base base.gguf --out-dir pairs >&2
fi
OLD=pairs/old.gguf

# run_timed NAME CMD...: runs CMD under /usr/bin/time -v; sets SECS and RSS_MIB.
run_timed() {
  local log="$WORK/time-$1.log"
  shift
  /usr/bin/time -v "$@" >/dev/null 2>"$log" || { echo "failed: $* (see $log)" >&2; tail -5 "$log" >&2; return 1; }
  SECS=$(awk -F': ' '/Elapsed \(wall clock\)/ {n=split($2,a,":"); s=0; for(i=1;i<=n;i++) s=s*60+a[i]; print s}' "$log")
  RSS_MIB=$(awk -F': ' '/Maximum resident set size/ {printf "%.1f", $2/1024}' "$log")
}

pct() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f%%", 100*a/b}'; }

if [[ ! -f "$RESULTS" ]]; then
  {
    echo "| pair | new file | tool | patch | share of new | make s | apply s | apply peak RSS | result |"
    echo "|---|---:|---|---:|---:|---:|---:|---:|---|"
  } > "$RESULTS"
fi

for p in $PAIRS; do
  NEW="pairs/$p.gguf"
  FULL=$(stat -c %s "$NEW")
  for tool in $TOOLS; do
    [[ "$tool" == bsdiff && "$BSDIFF" != 1 ]] && continue
    patch="$WORK/$p.$tool.patch"
    out="$WORK/$p.$tool.out"
    rm -f "$out" "$patch"
    echo "== $p: $tool" >&2
    case "$tool" in
      edgelm)
        run_timed "$p-$tool-make" "$EDGELM" delta make "$OLD" "$NEW" -o "$patch" -l "$LEVEL" -t "$THREADS" -q
        MK=$SECS
        run_timed "$p-$tool-apply" "$EDGELM" delta apply "$OLD" "$patch" -o "$out" -q ;;
      xdelta3)
        run_timed "$p-$tool-make" xdelta3 -e -9 -f -s "$OLD" "$NEW" "$patch"
        MK=$SECS
        run_timed "$p-$tool-apply" xdelta3 -d -f -s "$OLD" "$patch" "$out" ;;
      bsdiff)
        run_timed "$p-$tool-make" bsdiff "$OLD" "$NEW" "$patch"
        MK=$SECS
        run_timed "$p-$tool-apply" bspatch "$OLD" "$out" "$patch" ;;
      zstd)
        run_timed "$p-$tool-make" zstd -q -f "-$ZSTD_LEVEL" --ultra --long=31 --patch-from="$OLD" "$NEW" -o "$patch"
        MK=$SECS
        run_timed "$p-$tool-apply" zstd -q -f -d --long=31 --patch-from="$OLD" "$patch" -o "$out" ;;
    esac
    SIZE=$(stat -c %s "$patch")
    if cmp -s "$out" "$NEW"; then ok="identical"; else ok="DIFFERENT"; fi
    echo "| $p | $FULL | $tool | $SIZE | $(pct "$SIZE" "$FULL") | $MK | $SECS | $RSS_MIB MiB | $ok |" >> "$RESULTS"
    rm -f "$out"
  done
done
cat "$RESULTS"
